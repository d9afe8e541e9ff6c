"""The public request form at /requests/new: validation per field and per action type."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Case
from portal.models.case import URLS_MAX
from tests.conftest import post_form
from tests.public_data import valid_request

URL = "/requests/new"


def case_count() -> int:
    return db.session.scalar(select(func.count(Case.id))) or 0


def errors_for(html: str, field: str) -> bool:
    return f'id="{field}-error"' in html


def test_form_shows_every_contract_field_with_a_label(client: FlaskClient) -> None:
    html = client.get(URL).get_data(as_text=True)
    for name in (
        "summary",
        "evidence_urls",
        "prior_attempt_urls",
        "no_prior_attempt_reason",
        "requester_name",
        "requester_email",
        "details",
        "scope_location",
        "scope_project",
        "scope_until",
    ):
        assert f'name="{name}"' in html
        assert f'<label for="{name}">' in html
    for action in ("global_ban", "event_ban", "dmca", "child_protection", "range_block"):
        assert f'value="{action}"' in html
    assert "checkuser" not in html.lower()
    assert 'name="csrf_token"' in html


def checked_action(html: str) -> str | None:
    for tag in re.findall(r'<input[^>]*name="action"[^>]*>', html):
        if " checked" in tag:
            return re.search(r'value="([^"]+)"', tag)[1]  # type: ignore[index]
    return None


def test_home_page_link_preselects_child_protection(client: FlaskClient) -> None:
    html = client.get(URL + "?action=child_protection").get_data(as_text=True)
    assert checked_action(html) == "child_protection"


def test_valid_request_redirects_to_the_reference(client: FlaskClient) -> None:
    response = post_form(client, URL, valid_request())
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    case = db.session.scalars(select(Case)).one()
    assert case.reference in page
    assert case.evidence_urls == [
        "https://en.wikipedia.org/w/index.php?diff=1",
        "https://fr.wikipedia.org/w/index.php?diff=2",
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"action": ""}, "action"),
        ({"action": "checkuser"}, "action"),
        ({"summary": "   "}, "summary"),
        ({"summary": "word " * 301}, "summary"),
        ({"requester_email": ""}, "requester_email"),
        ({"requester_email": "not-an-address"}, "requester_email"),
        ({"requester_email": "a@b@c.org"}, "requester_email"),
        ({"evidence_urls": "javascript:alert(1)"}, "evidence_urls"),
        ({"evidence_urls": "data:text/html,hi"}, "evidence_urls"),
        ({"prior_attempt_urls": "ftp://example.org/x"}, "prior_attempt_urls"),
        ({"prior_attempt_urls": ""}, "prior_attempt_urls"),
        ({"action": "event_ban"}, "scope_location"),
        ({"action": "event_ban", "scope_project": "x", "scope_until": "2001-01-01"}, "scope_until"),
        ({"action": "event_ban", "scope_until": "not a date"}, "scope_until"),
        ({"website": "http://spam.example"}, "website"),
    ],
)
def test_invalid_field_is_refused_with_a_message_beside_it(
    client: FlaskClient, changes: dict[str, str], field: str
) -> None:
    data = valid_request(**changes)
    response = post_form(client, URL, data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    if field != "website":  # the honeypot is invisible: its message is in the summary only
        assert errors_for(html, field), f"no error shown beside {field}"
        # Screen readers announce the error with the field.
        assert re.search(rf'aria-describedby="[^"]*{field}-error', html)
    assert 'role="alert"' in html
    assert case_count() == 0


def test_errors_keep_everything_typed(client: FlaskClient) -> None:
    data = valid_request(
        requester_email="broken",
        summary="Keep <this> text & these words",
        details="Détails importants",
        evidence_urls="https://example.org/a\njavascript:alert(1)",
    )
    html = post_form(client, URL, data).get_data(as_text=True)
    assert "Keep &lt;this&gt; text &amp; these words" in html
    assert "Détails importants" in html
    assert "https://example.org/a\njavascript:alert(1)" in html
    assert 'value="broken"' in html
    assert checked_action(html) == "global_ban"


@pytest.mark.parametrize(
    "action",
    [
        "global_ban",
        "event_ban",
        "conduct_warning",
        "rights_removal",
        "page_protection",
        "range_block",
    ],
)
def test_prior_attempts_required_unless_a_reason_is_given(client: FlaskClient, action: str) -> None:
    extra = {"scope_location": "Berlin"} if action == "event_ban" else {}
    refused = post_form(client, URL, valid_request(action=action, prior_attempt_urls="", **extra))
    assert refused.status_code == 400
    assert errors_for(refused.get_data(as_text=True), "prior_attempt_urls")
    accepted = post_form(
        client,
        URL,
        valid_request(
            action=action,
            prior_attempt_urls="",
            no_prior_attempt_reason="The administrators there are the people harassing me.",
            **extra,
        ),
    )
    assert accepted.status_code == 303


def test_dmca_needs_no_prior_attempts(client: FlaskClient) -> None:
    response = post_form(client, URL, valid_request(action="dmca", prior_attempt_urls=""))
    assert response.status_code == 303


def test_child_protection_asks_only_for_a_description_and_an_address(client: FlaskClient) -> None:
    data = {
        "action": "child_protection",
        "summary": "An adult is asking a young editor to move to a private chat. " * 60,
        "requester_email": "worried@example.org",
    }
    response = post_form(client, URL, data)
    assert response.status_code == 303, response.get_data(as_text=True)
    case = db.session.scalars(select(Case)).one()
    assert (case.team, case.priority, case.action) == ("trust_safety", "urgent", "child_protection")


def test_event_ban_keeps_its_scope_and_other_actions_do_not(client: FlaskClient) -> None:
    post_form(
        client,
        URL,
        valid_request(
            action="event_ban",
            scope_location="Lagos",
            scope_project="Wikimania",
            scope_until="2099-01-31",
        ),
    )
    post_form(client, URL, valid_request(action="global_ban", scope_location="Ignored"))
    event, ban = db.session.scalars(select(Case).order_by(Case.id)).all()
    assert (event.scope_location, event.scope_project, str(event.scope_until)) == (
        "Lagos",
        "Wikimania",
        "2099-01-31",
    )
    assert ban.scope_location is None


def test_email_is_stored_normalised(client: FlaskClient, app: Flask) -> None:
    post_form(client, URL, valid_request(requester_email="  Someone@EXAMPLE.ORG "))
    case = db.session.scalars(select(Case)).one()
    assert case.requester is not None
    assert case.requester.email == "Someone@example.org"
    assert case.requester.canonical_email == "someone@example.org"


def test_confirmation_page_needs_the_session_that_submitted(
    client: FlaskClient, app: Flask
) -> None:
    response = app.test_client().get("/requests/submitted")
    assert response.status_code == 302


def test_a_huge_url_list_is_refused_with_a_clear_error_keeping_what_was_typed(
    client: FlaskClient,
) -> None:
    """Issue 10: at most a few hundred links per field (URLS_MAX), said plainly."""
    typed = "\n".join(f"https://en.wikipedia.org/wiki/Special:Diff/{n}" for n in range(10_000))
    response = post_form(client, URL, valid_request(prior_attempt_urls=typed))

    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert errors_for(html, "prior_attempt_urls")
    assert f"Give at most {URLS_MAX} links, one per line; this list has 10,000." in html
    assert typed in html
    assert case_count() == 0
    assert URLS_MAX >= 200  # "a few hundred": a long ban request's diffs must fit
