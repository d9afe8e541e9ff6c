"""Access control by enumeration: every route of the app, every role.

A new route is covered without anyone remembering to add it here: the test walks the URL
map. Public routes are listed explicitly; everything else must refuse a stranger.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from portal.extensions import db
from portal.models import Case, StaffUser
from tests.conftest import csrf_token
from tests.factories import Auth

PUBLIC_ENDPOINTS = {
    "static",
    "public.index",
    "public.new_request",
    "public.request_submitted",
    "public.new_appeal",
    "public.appeal_sent",
    "public.confirm_appeal_link",
    "public.appeal_confirmed",
    "public.abuse_policy",
    "staff.login",
    # For load balancers: whether the portal can work, naming no person (tests/test_healthz.py).
    "health.healthz",
}


def concrete_url(rule: Rule, ids: dict[str, int]) -> str:
    return re.sub(r"<(?:int:)?(\w+)>", lambda m: str(ids.get(m[1], 1)), rule.rule)


def staff_rules(app: Flask) -> list[Rule]:
    return [r for r in app.url_map.iter_rules() if r.endpoint not in PUBLIC_ENDPOINTS]


def test_every_non_public_route_is_under_staff(app: Flask) -> None:
    for rule in staff_rules(app):
        assert rule.rule.startswith("/staff/"), f"{rule.rule} is neither public nor staff"


def test_every_staff_route_refuses_a_stranger(
    app: Flask, client: FlaskClient, create_case: Callable[..., Case]
) -> None:
    case = create_case()
    ids = {"case_id": case.id, "attachment_id": 1, "canned_id": 1}
    # A valid CSRF token, so that a POST is refused for want of a sign-in, not of a token.
    token = csrf_token(client.get("/staff/login"))
    checked = 0
    for rule in staff_rules(app):
        url = concrete_url(rule, ids)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            data = {"csrf_token": token} if method == "POST" else None
            response = client.open(url, method=method, data=data)
            assert response.status_code == 302, (method, url, response.status_code)
            assert "/staff/login" in response.headers["Location"], (method, url)
            checked += 1
    assert checked >= 15


ROLES = ["trust_safety", "legal", "appeals_reviewer", "admin"]


@pytest.fixture
def cases(
    create_case: Callable[..., Case], create_staff: Callable[..., StaffUser]
) -> dict[str, Case]:
    assignee = create_staff("trust_safety", email="assignee@foundation.example")
    made = {
        "trust_safety": create_case("global_ban"),
        "legal": create_case("dmca"),
        "child_protection": create_case("child_protection"),
        "confidential": create_case("global_ban", confidential=True, assignee_id=assignee.id),
        "appealed": create_case("event_ban"),
    }
    made["appeal"] = create_case(
        "global_ban", team="appeals", kind="appeal", appeal_of_id=made["appealed"].id
    )
    # Trust & Safety shared this one's whole file with the review committee.
    made["appealed_shared"] = create_case("global_ban", shared_with_reviewers=True)
    made["appeal_of_shared"] = create_case(
        "global_ban", team="appeals", kind="appeal", appeal_of_id=made["appealed_shared"].id
    )
    db.session.commit()
    return made


# Which cases each role sees (by the keys of the `cases` fixture). Appeal reviewers see the
# file of a case under appeal only when Trust & Safety shared it; otherwise only its decision,
# on the appeal's review page (tests/test_appeals_review.py).
APPEALS = {"appeal", "appeal_of_shared"}
VISIBLE = {
    "trust_safety": {"trust_safety", "child_protection", "appealed", "appealed_shared"} | APPEALS,
    "legal": {"legal"},
    "appeals_reviewer": APPEALS | {"appealed_shared"},
    "admin": {"trust_safety", "legal", "confidential", "appealed", "appealed_shared"} | APPEALS,
}


def case_routes(app: Flask) -> list[Rule]:
    return [r for r in staff_rules(app) if "<int:case_id>" in r.rule]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_its_cases_on_every_case_route(
    app: Flask,
    auth: Auth,
    client: FlaskClient,
    create_staff: Callable[..., StaffUser],
    cases: dict[str, Case],
    role: str,
) -> None:
    user = create_staff(role)
    assert auth.login(user).status_code == 302
    rules = case_routes(app)
    assert len(rules) >= 8
    # A valid token, so that POSTs reach the view: CSRF must not be what hides a case.
    token = csrf_token(client.get("/staff/"))

    def fetch(rule: Rule, case_id: int) -> int:
        url = concrete_url(rule, {"case_id": case_id})
        if "GET" in rule.methods:
            return client.get(url).status_code
        return client.post(url, data={"csrf_token": token}).status_code

    for name, case in cases.items():
        for rule in rules:
            status = fetch(rule, case.id)
            if name in VISIBLE[role]:
                # Visible: the page, an empty form refused with a message, or a role check.
                assert status in (200, 303, 400, 403), (role, name, rule.rule, status)
            else:
                # Hidden: exactly what a case that does not exist gets, so nothing leaks.
                assert status in (403, 404), (role, name, rule.rule, status)
                assert status == fetch(rule, 999_999), (role, name, rule.rule)
    inbox = client.get("/staff/?status=all").get_data(as_text=True)
    for name, case in cases.items():
        assert (case.reference in inbox) == (name in VISIBLE[role]), (role, name)


def test_assignee_sees_their_confidential_case(
    auth: Auth, client: FlaskClient, cases: dict[str, Case]
) -> None:
    assignee = db.session.scalars(
        db.select(StaffUser).where(StaffUser.email == "assignee@foundation.example")
    ).one()
    auth.login(assignee)
    assert client.get(f"/staff/cases/{cases['confidential'].id}").status_code == 200


@pytest.mark.parametrize("role", ["trust_safety", "legal", "appeals_reviewer"])
def test_admin_pages_need_the_admin_role(
    auth: Auth, client: FlaskClient, create_staff: Callable[..., StaffUser], role: str
) -> None:
    auth.login(create_staff(role))
    assert client.get("/staff/admin/canned").status_code == 403


def test_staff_pages_are_never_cached(
    auth: Auth, client: FlaskClient, create_staff: Callable[..., StaffUser]
) -> None:
    auth.login(create_staff("admin"))
    assert client.get("/staff/").headers["Cache-Control"] == "no-store"
