"""The confirmation link (issue 5): signed, single use, 48 hours, for one role; following it
puts the appeal in its reviewers' queue with its own policy clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import delete, select

from portal.config import get_settings
from portal.extensions import db
from portal.models import Appeal, Case, CaseParty, Message, StaffUser
from portal.models.base import utcnow
from portal.policy.appeals import AppellantRole
from portal.policy.mail import MailPurpose
from portal.services.appeal_checks import LINK_SALT, Confirmed
from portal.services.appeals import AppealFiling, Filed, confirm_appeal, file_appeal
from tests.appeals_helpers import (
    DECIDED_AT,
    REQUESTER,
    SUBJECT,
    appeal_form,
    decided_case,
    file_on_web,
    link_in,
    outbox,
    text_of,
    token_of,
)
from tests.conftest import csrf_token
from tests.factories import Auth


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {
        "APPEAL_RATE_LIMIT": "1000 per hour",
        "APPEAL_ADDRESS_RATE_LIMIT": "1000 per day",
        "APPEAL_PAGE_RATE_LIMIT": "1000 per hour",
        "PUBLIC_URL": "https://portal.example.org/",
    }


@pytest.fixture
def decider(create_staff: Callable[..., StaffUser]) -> StaffUser:
    return create_staff("trust_safety")


def filing(case: Case, role: str = "subject", address: str = SUBJECT) -> AppealFiling:
    return AppealFiling(
        case_reference=case.reference or "",
        appellant_email=address,
        role=AppellantRole(role),
        reasons="The ban rests on a misread diff.",
    )


def file_and_get_token(app: Flask, case: Case, **kwargs: Any) -> tuple[Appeal, str]:
    now = kwargs.pop("now", DECIDED_AT + timedelta(days=3))
    result = file_appeal(
        db.session, get_settings(), str(app.secret_key), filing(case, **kwargs), now=now
    )
    db.session.commit()
    assert result.result is Filed.CONFIRMATION_SENT
    appeal = db.session.get_one(Appeal, result.appeal_id)
    mail = next(m for m in outbox(MailPurpose.APPEAL_CONFIRMATION) if m.id in result.outbound_ids)
    return appeal, token_of(mail)


def confirm(app: Flask, token: str, **kwargs: Any) -> Any:
    result = confirm_appeal(db.session, get_settings(), str(app.secret_key), token, **kwargs)
    db.session.commit()
    return result


def test_the_link_is_built_from_the_configured_public_address(
    app: Flask, create_case: Callable[..., Case], decider: StaffUser, client: FlaskClient
) -> None:
    case = decided_case(create_case, decider, decided_at=utcnow() - timedelta(days=1))
    # A request made to (or forged as) another host name: the link must not follow it.
    response = file_on_web(client, appeal_form(case), base_url="http://evil.example.com")
    assert response.status_code == 303
    (mail,) = outbox(MailPurpose.APPEAL_CONFIRMATION)
    assert link_in(mail.raw).startswith("https://portal.example.org/appeals/confirm/")


def test_following_the_link_puts_the_appeal_in_the_committee_queue(
    app: Flask,
    client: FlaskClient,
    auth: Auth,
    create_case: Callable[..., Case],
    create_staff: Callable[..., StaffUser],
    decider: StaffUser,
) -> None:
    case = decided_case(create_case, decider, decided_at=utcnow() - timedelta(days=20))
    file_on_web(client, appeal_form(case, details="More context."))
    (mail,) = outbox(MailPurpose.APPEAL_CONFIRMATION)
    path = "/appeals/confirm/" + token_of(mail)

    # Opening the link only shows a button: mail scanners that open links confirm nothing.
    page = client.get(path)
    assert page.status_code == 200
    assert "Confirm my appeal" in page.get_data(as_text=True)
    assert client.get(path).status_code == 200
    assert db.session.scalars(select(Appeal)).one().state == "pending"

    response = client.post(path, data={"csrf_token": csrf_token(page)})
    assert response.status_code == 303
    done = client.get(response.headers["Location"]).get_data(as_text=True)
    appeal = db.session.scalars(select(Appeal)).one()
    appeal_case = db.session.get_one(Case, appeal.appeal_case_id)
    assert appeal_case.reference in done
    assert (appeal.state, appeal.route) == ("open", "committee")
    assert (appeal_case.kind, appeal_case.team, appeal_case.status) == ("appeal", "appeals", "new")
    assert appeal_case.appeal_of_id == case.id
    assert appeal.confirmed_at is not None
    assert appeal_case.due_at == appeal.confirmed_at + timedelta(days=28)
    first = db.session.scalars(select(Message).where(Message.case_id == appeal_case.id)).first()
    assert first is not None
    assert "The evidence was misread" in (first.body_text or "")
    assert "More context." in (first.body_text or "")
    assert first.sender == SUBJECT
    (filed,) = outbox(MailPurpose.APPEAL_FILED)
    assert filed.recipients == [SUBJECT]
    assert filed.envelope_from == "appeals@example.org"
    assert appeal_case.reference in text_of(filed.raw)

    # The review committee sees it in its queue, with its clock.
    reviewer = create_staff("appeals_reviewer")
    auth.login(reviewer)
    inbox = client.get("/staff/?team=appeals").get_data(as_text=True)
    assert appeal_case.reference in inbox
    assert "27 days left" in inbox
    assert f'href="/staff/appeals/{appeal_case.id}"' in inbox


def test_a_link_works_once(
    app: Flask, client: FlaskClient, create_case: Callable[..., Case], decider: StaffUser
) -> None:
    case = decided_case(create_case, decider, decided_at=utcnow() - timedelta(days=2))
    file_on_web(client, appeal_form(case))
    path = "/appeals/confirm/" + token_of(outbox(MailPurpose.APPEAL_CONFIRMATION)[0])
    page = client.get(path)
    assert client.post(path, data={"csrf_token": csrf_token(page)}).status_code == 303
    again = client.post(path, data={"csrf_token": csrf_token(page)})
    assert again.status_code == 410
    assert "used already" in again.get_data(as_text=True)
    assert client.get(path).status_code == 410
    assert len(db.session.scalars(select(Case).where(Case.kind == "appeal")).all()) == 1


def test_a_link_expires_after_48_hours(
    app: Flask, create_case: Callable[..., Case], decider: StaffUser
) -> None:
    case = decided_case(create_case, decider)
    filed_at = DECIDED_AT + timedelta(days=3)
    _, token = file_and_get_token(app, case, now=filed_at)
    late = confirm(app, token, now=filed_at + timedelta(hours=48, seconds=1))
    assert late.status is Confirmed.EXPIRED
    in_time = confirm(app, token, now=filed_at + timedelta(hours=48))
    assert in_time.status is Confirmed.CONFIRMED


def test_an_expired_link_says_so_calmly(
    app: Flask, client: FlaskClient, create_case: Callable[..., Case], decider: StaffUser
) -> None:
    case = decided_case(create_case, decider, decided_at=utcnow() - timedelta(days=2))
    file_on_web(client, appeal_form(case))
    appeal = db.session.scalars(select(Appeal)).one()
    appeal.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    response = client.get(
        "/appeals/confirm/" + token_of(outbox(MailPurpose.APPEAL_CONFIRMATION)[0])
    )
    assert response.status_code == 410
    assert "This link has expired" in response.get_data(as_text=True)


def forged_tokens(app: Flask, appeal: Appeal, token: str) -> dict[str, str]:
    ours = URLSafeTimedSerializer(str(app.secret_key), salt=LINK_SALT)
    theirs = URLSafeTimedSerializer("another-key", salt=LINK_SALT)
    payload = {"a": appeal.id, "n": appeal.nonce, "r": appeal.role}
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    return {
        "altered": flipped,
        "signed with another key": str(theirs.dumps(payload)),
        "another salt": str(URLSafeTimedSerializer(str(app.secret_key)).dumps(payload)),
        "other nonce": str(ours.dumps({**payload, "n": "guessed-nonce"})),
        "other appeal": str(ours.dumps({**payload, "a": appeal.id + 1})),
        "junk": "not-a-token",
    }


def test_forged_links_confirm_nothing(
    app: Flask, client: FlaskClient, create_case: Callable[..., Case], decider: StaffUser
) -> None:
    case = decided_case(create_case, decider)
    appeal, token = file_and_get_token(app, case)
    for name, forged in forged_tokens(app, appeal, token).items():
        result = confirm(app, forged, now=appeal.filed_at + timedelta(hours=1))
        assert result.status is Confirmed.INVALID, name
        response = client.get(f"/appeals/confirm/{forged}")
        assert response.status_code == 404, name
        assert "This link is not valid" in response.get_data(as_text=True)
    assert db.session.get_one(Appeal, appeal.id).state == "pending"


def test_a_link_for_one_role_never_confirms_another(
    app: Flask, create_case: Callable[..., Case], decider: StaffUser
) -> None:
    case = decided_case(create_case, decider)
    appeal, _ = file_and_get_token(app, case, role="subject", address=SUBJECT)
    signer = URLSafeTimedSerializer(str(app.secret_key), salt=LINK_SALT)
    as_requester = str(signer.dumps({"a": appeal.id, "n": appeal.nonce, "r": "requester"}))
    result = confirm(app, as_requester, now=appeal.filed_at + timedelta(hours=1))
    assert result.status is Confirmed.INVALID
    assert db.session.get_one(Appeal, appeal.id).state == "pending"


def test_a_party_removed_before_confirming_can_no_longer_confirm(
    app: Flask, create_case: Callable[..., Case], decider: StaffUser
) -> None:
    case = decided_case(create_case, decider)
    appeal, token = file_and_get_token(app, case)
    db.session.execute(delete(CaseParty).where(CaseParty.role == "subject"))
    db.session.commit()
    result = confirm(app, token, now=appeal.filed_at + timedelta(hours=1))
    assert result.status is Confirmed.INVALID


def test_the_six_months_count_to_the_filing_not_to_the_click(
    app: Flask, create_case: Callable[..., Case], decider: StaffUser
) -> None:
    case = decided_case(create_case, decider)
    last_day = DECIDED_AT.replace(year=2027, month=2, day=28, hour=22)
    _, token = file_and_get_token(app, case, now=last_day)
    result = confirm(app, token, now=last_day + timedelta(hours=30))
    assert result.status is Confirmed.CONFIRMED


@pytest.mark.parametrize(
    ("action", "fields", "team", "route"),
    [
        ("event_ban", {}, "trust_safety", "trust_safety"),  # no end date, not irrevocable
        ("event_ban", {"irrevocable": True}, "appeals", "committee"),
        ("page_protection", {"team": "legal"}, "legal", "legal"),
        ("global_ban", {}, "appeals", "committee"),
    ],
)
def test_appeals_are_routed_and_the_route_is_recorded(
    app: Flask,
    create_case: Callable[..., Case],
    decider: StaffUser,
    action: str,
    fields: dict[str, Any],
    team: str,
    route: str,
) -> None:
    fields = dict(fields)  # the parameter's dict is shared by the run on each database
    team_override = fields.pop("team", None)
    case = decided_case(create_case, decider, action=action, **fields)
    if team_override:
        case.team = team_override
        db.session.commit()
    appeal, token = file_and_get_token(app, case)
    result = confirm(app, token, now=appeal.filed_at + timedelta(hours=1))
    assert result.status is Confirmed.CONFIRMED
    appeal = db.session.get_one(Appeal, appeal.id)
    appeal_case = db.session.get_one(Case, appeal.appeal_case_id)
    assert (appeal_case.team, appeal.route) == (team, route)
    assert (appeal.route_reason is None) == (route == "committee")


def test_one_open_appeal_per_decision(
    app: Flask, client: FlaskClient, create_case: Callable[..., Case], decider: StaffUser
) -> None:
    case = decided_case(create_case, decider)
    soon = DECIDED_AT + timedelta(days=3)
    by_subject, subject_token = file_and_get_token(app, case, now=soon)
    by_requester, requester_token = file_and_get_token(
        app, case, role="requester", address=REQUESTER, now=soon
    )
    assert confirm(app, subject_token, now=soon).status is Confirmed.CONFIRMED
    # The second link was sent before the first appeal opened: it is refused when followed,
    # and the person (who proved the address) is told why on the page.
    second = confirm(app, requester_token, now=soon)
    assert second.status is Confirmed.REFUSED
    assert "already under review" in (second.message or "")
    assert db.session.get_one(Appeal, by_requester.id).state == "refused"
    # A new filing while the appeal is open is refused by mail.
    again = file_appeal(db.session, get_settings(), str(app.secret_key), filing(case), now=soon)
    db.session.commit()
    assert again.result is Filed.REFUSED
    refusal = outbox(MailPurpose.APPEAL_REFUSAL)[-1]
    assert "already under review" in " ".join(text_of(refusal.raw).split())
    assert by_subject.id != by_requester.id
