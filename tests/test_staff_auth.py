"""Staff sign-in (password plus TOTP), staff sessions and how they end, the staff 403 page,
changing one's password, and the staff CLI. Throttling: tests/test_staff_auth_throttle.py."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from portal.extensions import db
from portal.models import StaffUser
from portal.services import staff as staff_service
from portal.signin import SessionEnd
from portal.staff.auth import LAST_SEEN, SIGNED_IN
from tests.conftest import csrf_token, post_form
from tests.factories import STAFF_PASSWORD, Auth, unused_code

NEW_PASSWORD = "a brand new passphrase"


def test_login_with_password_and_code_then_logout(
    auth: Auth, client: FlaskClient, create_staff: Callable[..., StaffUser]
) -> None:
    user = create_staff("trust_safety")
    response = auth.login(user)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/staff/")
    assert client.get("/staff/").status_code == 200
    assert auth.logout().status_code == 302
    assert client.get("/staff/").status_code == 302


@pytest.mark.parametrize("wrong", ["password", "code", "email"])
def test_wrong_credentials_get_one_neutral_message(
    auth: Auth, create_staff: Callable[..., StaffUser], wrong: str
) -> None:
    user = create_staff("legal")
    kwargs: dict[str, Any] = {}
    if wrong == "password":
        kwargs["password"] = "not the password"
    elif wrong == "code":
        kwargs["code"] = "000000" if unused_code(user) != "000000" else "111111"
    else:
        kwargs["email"] = "nobody@foundation.example"
    response = auth.login(user, **kwargs)
    assert response.status_code == 400
    assert "e-mail address, password or code is not right" in response.get_data(as_text=True)
    db.session.rollback()


def test_a_code_works_only_once(
    client: FlaskClient, create_staff: Callable[..., StaffUser], app: Flask
) -> None:
    user = create_staff("legal")
    code = unused_code(user)
    first = Auth(client).login(user, code=code)
    assert first.status_code == 302
    replay = Auth(app.test_client()).login(user, code=code)
    assert replay.status_code == 400


def test_disabled_account_cannot_sign_in_and_its_session_ends(
    auth: Auth, client: FlaskClient, create_staff: Callable[..., StaffUser]
) -> None:
    user = create_staff("trust_safety")
    auth.login(user)
    assert client.get("/staff/").status_code == 200
    staff_service.disable_staff(db.session, user.email)
    db.session.commit()
    assert client.get("/staff/").status_code == 302
    assert auth.login(user).status_code == 400


def test_session_cookie_is_strict_and_http_only(
    auth: Auth, create_staff: Callable[..., StaffUser]
) -> None:
    user = create_staff("trust_safety")
    cookie = auth.login(user).headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Expires=" in cookie  # a permanent session with a lifetime limit


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"SESSION_COOKIE_SECURE": True}


def test_secure_cookie_when_configured(auth: Auth, create_staff: Callable[..., StaffUser]) -> None:
    user = create_staff("trust_safety")
    assert "Secure" in auth.login(user).headers["Set-Cookie"]


def test_next_only_goes_to_staff_pages(
    client: FlaskClient, create_staff: Callable[..., StaffUser]
) -> None:
    user = create_staff("trust_safety")
    page = client.get("/staff/login?next=//evil.example/")
    response = client.post(
        "/staff/login?next=//evil.example/",
        data={
            "email": user.email,
            "password": STAFF_PASSWORD,
            "code": unused_code(user),
            "csrf_token": csrf_token(page),
        },
    )
    assert response.headers["Location"] == "/staff/"


def test_staff_cli_create_disable_and_reset(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=[
            "staff",
            "create",
            "lead@foundation.example",
            "--role",
            "trust_safety",
            "--role",
            "admin",
            "--password-stdin",
        ],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    uri = result.output.strip().splitlines()[-1]
    assert uri.startswith("otpauth://totp/")
    user = db.session.scalars(select(StaffUser)).one()
    assert sorted(user.roles) == ["admin", "trust_safety"]
    assert pyotp.parse_uri(uri).secret == user.totp_secret
    assert "a long enough password" not in result.output

    again = runner.invoke(
        args=["staff", "create", "LEAD@foundation.example", "--role", "legal", "--password-stdin"],
        input="another long password\n",
    )
    assert again.exit_code != 0
    assert "exists already" in again.output

    short = runner.invoke(
        args=["staff", "create", "x@foundation.example", "--role", "legal", "--password-stdin"],
        input="short\n",
    )
    assert short.exit_code != 0

    old_secret = user.totp_secret
    reset = runner.invoke(args=["staff", "reset-2fa", "lead@foundation.example"])
    assert reset.exit_code == 0
    db.session.refresh(user)
    assert user.totp_secret != old_secret

    disabled = runner.invoke(args=["staff", "disable", "lead@foundation.example"])
    assert disabled.exit_code == 0
    db.session.refresh(user)
    assert user.active is False


# Issue "Keep every promise…", section 4: "a session cookie saved before logout still opens
# /staff/ after logout".
def test_a_cookie_saved_before_logout_no_longer_opens_staff_pages(
    auth: Auth, client: FlaskClient, create_staff: Callable[..., StaffUser]
) -> None:
    user = create_staff("trust_safety")
    auth.login(user)
    saved = client.get_cookie("session")
    assert saved is not None
    assert auth.logout().status_code == 302
    client.set_cookie("session", saved.value)
    response = client.get("/staff/")
    assert response.status_code == 302
    assert "/staff/login" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert SessionEnd.ENDED.value in page


def signed_in_elsewhere(app: Flask, user: StaffUser) -> FlaskClient:
    other = app.test_client()
    db.session.refresh(user)  # the code used by the first sign-in is not good twice
    assert Auth(other).login(user).status_code == 302
    assert other.get("/staff/").status_code == 200
    return other


def test_logout_ends_every_session_of_the_account_and_only_of_it(
    app: Flask, auth: Auth, client: FlaskClient, create_staff: Callable[..., StaffUser]
) -> None:
    user, colleague = create_staff("legal"), create_staff("legal")
    auth.login(user)
    other_browser = signed_in_elsewhere(app, user)
    colleagues_browser = signed_in_elsewhere(app, colleague)
    auth.logout()
    assert other_browser.get("/staff/").status_code == 302
    assert colleagues_browser.get("/staff/").status_code == 200


@pytest.mark.parametrize("end", ["disable", "reset-2fa", "set-password"])
def test_account_changes_from_the_command_line_end_every_session(
    app: Flask, runner: FlaskCliRunner, create_staff: Callable[..., StaffUser], end: str
) -> None:
    user = create_staff("appeals_reviewer")
    browser = signed_in_elsewhere(app, user)
    extra = ["--password-stdin"] if end == "set-password" else []
    result = runner.invoke(args=["staff", end, user.email, *extra], input=NEW_PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert browser.get("/staff/").status_code == 302


def test_set_password_from_the_command_line(
    app: Flask, runner: FlaskCliRunner, create_staff: Callable[..., StaffUser]
) -> None:
    user = create_staff("trust_safety")
    short = runner.invoke(
        args=["staff", "set-password", user.email, "--password-stdin"], input="short\n"
    )
    assert short.exit_code != 0
    assert "at least 12 characters" in short.output
    unknown = runner.invoke(
        args=["staff", "set-password", "nobody@foundation.example", "--password-stdin"],
        input=NEW_PASSWORD + "\n",
    )
    assert unknown.exit_code != 0
    result = runner.invoke(
        args=["staff", "set-password", user.email.upper(), "--password-stdin"],
        input=NEW_PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert NEW_PASSWORD not in result.output
    assert Auth(app.test_client()).login(user, password=STAFF_PASSWORD).status_code == 400
    db.session.refresh(user)
    assert Auth(app.test_client()).login(user, password=NEW_PASSWORD).status_code == 302


def age_session(client: FlaskClient, *, idle: timedelta, signed_in: timedelta) -> None:
    """What the cookie of a browser left alone for ``idle`` looks like."""
    with client.session_transaction() as session:
        session[LAST_SEEN] -= idle.total_seconds()
        session[SIGNED_IN] -= signed_in.total_seconds()


def test_a_session_unused_past_the_idle_limit_ends(
    auth: Auth, client: FlaskClient, create_staff: Callable[..., StaffUser]
) -> None:
    auth.login(create_staff("trust_safety"))
    age_session(client, idle=timedelta(minutes=59), signed_in=timedelta(minutes=59))
    assert client.get("/staff/").status_code == 200  # and that request counts as activity
    age_session(client, idle=timedelta(minutes=59), signed_in=timedelta(minutes=59))
    assert client.get("/staff/").status_code == 200
    age_session(client, idle=timedelta(minutes=61), signed_in=timedelta(0))
    response = client.get("/staff/cases/1")
    assert response.status_code == 302
    assert "next=/staff/cases/1" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert SessionEnd.IDLE.value in page
    with client.session_transaction() as session:
        assert "_user_id" not in session  # the stale session is gone, not just ignored


def test_a_session_ends_after_the_working_day_even_if_busy(
    auth: Auth, client: FlaskClient, create_staff: Callable[..., StaffUser]
) -> None:
    auth.login(create_staff("trust_safety"))
    age_session(client, idle=timedelta(0), signed_in=timedelta(hours=10, seconds=1))
    assert client.get("/staff/").status_code == 302


def test_a_session_from_before_session_versions_ends(
    auth: Auth, client: FlaskClient, create_staff: Callable[..., StaffUser]
) -> None:
    auth.login(create_staff("trust_safety"))
    with client.session_transaction() as session:
        for key in list(session):
            if key.startswith("staff_"):
                del session[key]
    assert client.get("/staff/").status_code == 302


# Issue section 4: "A staff member refused by role gets a staff-styled 403 with a way back."
def test_a_role_refusal_is_a_staff_page_with_a_way_back(
    auth: Auth, client: FlaskClient, create_staff: Callable[..., StaffUser]
) -> None:
    auth.login(create_staff("legal"))
    response = client.get("/staff/admin/canned")
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "This page is not open to your role" in html
    assert "<strong>admin</strong>" in html
    assert "Signed in as" in html  # the staff header, not the public site's
    assert 'href="/staff/">Back to the inbox' in html
    assert response.headers["Cache-Control"] == "no-store"


PASSWORD_URL = "/staff/account/password"


def change(client: FlaskClient, current: str, new: str, confirm: str | None = None) -> Any:
    data = {"current_password": current, "new_password": new, "confirm_password": confirm or new}
    return post_form(client, PASSWORD_URL, data)


def test_changing_ones_password_ends_the_other_sessions_and_keeps_this_one(
    app: Flask, auth: Auth, client: FlaskClient, create_staff: Callable[..., StaffUser]
) -> None:
    user = create_staff("appeals_reviewer")
    auth.login(user)
    other_browser = signed_in_elsewhere(app, user)
    response = change(client, STAFF_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 302
    assert "Every other session of yours has ended" in client.get("/staff/").get_data(as_text=True)
    assert other_browser.get("/staff/").status_code == 302
    db.session.refresh(user)
    # Two sign-ins have used this half-minute's codes: check the passwords themselves.
    assert PasswordHasher().verify(user.password_hash or "", NEW_PASSWORD)
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(user.password_hash or "", STAFF_PASSWORD)


@pytest.mark.parametrize(
    ("current", "new", "confirm", "message"),
    [
        ("not my password at all", NEW_PASSWORD, None, "This is not your current password."),
        (STAFF_PASSWORD, "too short", None, "Use at least 12 characters."),
        (STAFF_PASSWORD, NEW_PASSWORD, "a different passphrase", "The two do not match."),
        (STAFF_PASSWORD, STAFF_PASSWORD, None, "must differ from the current one"),
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(
    auth: Auth,
    client: FlaskClient,
    create_staff: Callable[..., StaffUser],
    current: str,
    new: str,
    confirm: str | None,
    message: str,
) -> None:
    user = create_staff("legal")
    auth.login(user)
    before = user.password_hash
    response = change(client, current, new, confirm)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert client.get("/staff/").status_code == 200  # still signed in
    db.session.refresh(user)
    assert user.password_hash == before


def test_the_staff_pages_link_to_the_password_page(
    auth: Auth, client: FlaskClient, create_staff: Callable[..., StaffUser]
) -> None:
    auth.login(create_staff("legal"))
    assert f'href="{PASSWORD_URL}"' in client.get("/staff/").get_data(as_text=True)
    assert client.get(PASSWORD_URL).status_code == 200


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        ("josé@exämple.com", "JOSÉ@EXÄMPLE.COM"),
        ("josé@exämple.com", "josé@xn--exmple-cua.com"),
        ("用户@例子.广告", " 用户@例子.广告 "),
    ],
)
def test_a_non_ascii_address_signs_in_however_it_is_typed(
    auth: Auth, create_staff: Callable[..., StaffUser], stored: str, typed: str
) -> None:
    user = create_staff("trust_safety", email=stored)
    assert auth.login(user, email=typed).status_code == 302


def test_a_password_set_decomposed_signs_in_as_the_browser_sends_it(
    app: Flask, runner: FlaskCliRunner, create_staff: Callable[..., StaffUser]
) -> None:
    """A terminal may send ``ñ`` as ``n`` + combining tilde; the sign-in form sends it NFC."""
    user = create_staff("trust_safety")
    password = "Contraseña de prueba"
    result = runner.invoke(
        args=["staff", "set-password", user.email, "--password-stdin"],
        input=unicodedata.normalize("NFD", password) + "\n",
    )
    assert result.exit_code == 0, result.output
    db.session.refresh(user)
    typed = unicodedata.normalize("NFD", password)  # the form folds it to NFC on the way in
    assert Auth(app.test_client()).login(user, password=typed).status_code == 302


def test_guessing_the_current_password_is_throttled_like_a_sign_in(
    auth: Auth, client: FlaskClient, create_staff: Callable[..., StaffUser]
) -> None:
    """A borrowed session must not be a way to guess the password."""
    auth.login(create_staff("legal"))
    statuses = [change(client, f"guess number {n}", NEW_PASSWORD).status_code for n in range(4)]
    assert statuses == [400, 400, 400, 429]
    response = change(client, STAFF_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 429
    assert "Too many failed attempts from here" in response.get_data(as_text=True)
    assert "Retry-After" in response.headers
