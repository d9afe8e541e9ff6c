"""The request form under attack: CSRF, hostile input, bots, floods, and response headers."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Case
from tests.conftest import csrf_token, post_form
from tests.public_data import valid_request

URL = "/requests/new"

HOSTILE_VALUES = [
    "x" * 100_000,
    "nul\x00byte and \x07bell \x1b[31mescape\x9b",
    "<script>alert('xss')</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(document.cookie)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "\u202eevil\u202c right-to-left override \u200f\u200e",
    "Z\u0351\u0352\u0353\u0354a\u0355\u0356\u0357\u0358l\u0359\u035a\u035bgo",
    "مرحبا بالعالم — שלום עולם",
    "{{ 7*7 }} {% raw %}",
    "\ud7ff\ufffd\uffff",
    "line\r\nInjected-Header: yes",
]
FIELDS = [
    "action",
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
    "website",
]


def assert_escaped(html: str) -> None:
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    # Only our own script tag may appear.
    scripts = re.findall(r"<script[^>]*>", html)
    assert all('src="/static/' in tag for tag in scripts), scripts


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=lambda v: repr(v[:20]))
def test_hostile_input_never_breaks_or_renders_unescaped(
    client: FlaskClient, field: str, value: str
) -> None:
    data: dict[str, Any] = valid_request(action="event_ban", scope_location="Paris")
    data[field] = value
    response = post_form(client, URL, data)
    assert response.status_code in (303, 400), response.status_code
    if response.status_code == 303:
        response = client.get(response.headers["Location"])
        assert response.status_code == 200
    assert_escaped(response.get_data(as_text=True))


def test_stored_text_has_no_control_characters(client: FlaskClient) -> None:
    post_form(client, URL, valid_request(summary="a\x00b\x1bc", details="d\x7fe"))
    case = db.session.scalars(select(Case)).one()
    assert (case.summary, case.details) == ("abc", "de")


def test_template_syntax_in_input_is_shown_not_evaluated(client: FlaskClient) -> None:
    html = post_form(client, URL, valid_request(summary="{{ 7*7 }}", requester_email="x")).get_data(
        as_text=True
    )
    assert "{{ 7*7 }}" in html


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"WTF_CSRF_ENABLED": True}


def test_post_without_csrf_token_is_refused_and_keeps_the_input(client: FlaskClient) -> None:
    response = client.post(URL, data=valid_request(summary="My carefully written summary"))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "was not sent yet" in html
    assert "My carefully written summary" in html
    assert db.session.scalar(select(func.count(Case.id))) == 0
    # The page carries a fresh token, so sending it again works.
    again = client.post(URL, data={**valid_request(), "csrf_token": csrf_token(response)})
    assert again.status_code == 303


def test_post_with_a_forged_token_is_refused(client: FlaskClient) -> None:
    client.get(URL)
    response = client.post(URL, data={**valid_request(), "csrf_token": "forged"})
    assert response.status_code == 400
    assert db.session.scalar(select(func.count(Case.id))) == 0


def test_token_from_another_session_is_refused(app: Flask) -> None:
    token = csrf_token(app.test_client().get(URL))
    other = app.test_client()
    other.get(URL)
    assert other.post(URL, data={**valid_request(), "csrf_token": token}).status_code == 400


def test_security_headers(client: FlaskClient) -> None:
    response = client.get(URL)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie


def test_unknown_page_is_a_calm_404(client: FlaskClient) -> None:
    response = client.get("/nothing-here")
    assert response.status_code == 404
    assert "could not find that page" in response.get_data(as_text=True)


def test_honeypot_filled_creates_nothing(client: FlaskClient) -> None:
    response = post_form(client, URL, valid_request(website="http://buy.example"))
    assert response.status_code == 400
    assert db.session.scalar(select(func.count(Case.id))) == 0
