"""Issue 10, section 6: a reporter page shows a person only to staff who may see one of that
person's cases.

Seen: any Trust & Safety member could open every reporter page, including the requesters of
confidential and Legal cases they cannot see. Now such a page, and every action on it, answers
exactly like a reporter that does not exist. Single-role users, so that a rule too strict
fails as surely as one too loose.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Case, Lockout, Reporter, StaffUser
from portal.models.base import utcnow
from portal.services import case_actions
from portal.services.cases import find_or_create_reporter
from tests.conftest import csrf_token
from tests.factories import Auth

MISSING = 999_999


@pytest.fixture
def reporters(
    create_case: Callable[..., Case], create_staff: Callable[..., StaffUser]
) -> dict[str, int]:
    """One person per kind of case, each the requester of that case only."""
    assignee = create_staff("trust_safety", email="assignee@foundation.example")
    made = {
        "trust_safety": create_case("global_ban", requester_email="مريم@مثال.إختبار"),
        "legal": create_case("dmca", requester_email="שרה@example.co.il"),
        "confidential": create_case(
            "global_ban",
            requester_email="josé@example.com",
            confidential=True,
            assignee_id=assignee.id,
        ),
        "child_protection": create_case("child_protection", requester_email="用户@例子.广告"),
    }
    ids = {name: case.requester_id for name, case in made.items() if case.requester_id}
    # The requester of a Legal case who is also the subject of a Trust & Safety case: shown
    # to Trust & Safety by the case they may see, where the person is a party.
    both = create_case("dmca", requester_email="both@example.org")
    case_actions.add_party(
        db.session,
        assignee,
        made["trust_safety"],
        address="\u200eBOTH@example.org",
        role="subject",
    )
    ids["both"] = both.requester_id or 0
    # Someone with no case at all (their only case was erased, say), locked out.
    alone = find_or_create_reporter(db.session, "alone@example.org")
    db.session.add(
        Lockout(
            reporter_id=alone.id,
            starts_at=utcnow(),
            ends_at=utcnow() + timedelta(days=7),
            proposed_days=7,
        )
    )
    db.session.commit()
    ids["none"] = alone.id
    return ids


SEES = {
    "trust_safety": {"trust_safety", "child_protection", "both"},
    "admin": {"trust_safety", "legal", "confidential", "both"},
}


@pytest.mark.parametrize("role", sorted(SEES))
def test_a_reporter_page_needs_one_of_their_cases(
    auth: Auth,
    client: FlaskClient,
    create_staff: Callable[..., StaffUser],
    reporters: dict[str, int],
    role: str,
) -> None:
    auth.login(create_staff(role))
    assert client.get(f"/staff/reporters/{MISSING}").status_code == 404
    for name, reporter_id in reporters.items():
        response = client.get(f"/staff/reporters/{reporter_id}")
        if name in SEES[role]:
            assert response.status_code == 200, (role, name)
            email = db.session.get_one(Reporter, reporter_id).email
            assert email in response.get_data(as_text=True)
        else:
            assert response.status_code == 404, (role, name)


@pytest.mark.parametrize("role", sorted(SEES))
def test_actions_on_a_hidden_reporter_answer_like_a_missing_one(
    auth: Auth,
    client: FlaskClient,
    create_staff: Callable[..., StaffUser],
    reporters: dict[str, int],
    role: str,
) -> None:
    auth.login(create_staff(role))
    token = csrf_token(client.get("/staff/"))
    lockout = db.session.scalars(db.select(Lockout)).one()  # on the person with no case

    def post(url: str) -> int:
        return client.post(url, data={"csrf_token": token}).status_code

    for name, reporter_id in reporters.items():
        if name in SEES[role]:
            continue
        for action in ("warning", "lockout"):
            assert post(f"/staff/reporters/{reporter_id}/{action}") == 404, (role, name, action)
    assert post(f"/staff/lockouts/{lockout.id}/lift") == 404
    assert post(f"/staff/lockouts/{MISSING}/lift") == 404


@pytest.mark.parametrize("role", ["legal", "appeals_reviewer"])
def test_roles_without_abuse_work_get_the_same_answer_for_everyone(
    auth: Auth,
    client: FlaskClient,
    create_staff: Callable[..., StaffUser],
    reporters: dict[str, int],
    role: str,
) -> None:
    auth.login(create_staff(role))
    missing = client.get(f"/staff/reporters/{MISSING}").status_code
    for reporter_id in reporters.values():
        assert client.get(f"/staff/reporters/{reporter_id}").status_code == missing
