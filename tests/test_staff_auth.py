"""Staff sign-in: password plus TOTP, throttled in the database; the staff CLI."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import LoginAttempt, StaffUser
from portal.models.base import utcnow
from portal.services import staff as staff_service
from tests.conftest import csrf_token
from tests.factories import STAFF_PASSWORD, Auth, unused_code


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


def test_failures_are_throttled_per_account(
    auth: Auth, create_staff: Callable[..., StaffUser]
) -> None:
    user = create_staff("trust_safety")
    for _ in range(staff_service.MAX_FAILURES_PER_ACCOUNT):
        assert auth.login(user, password="wrong password").status_code == 400
    response = auth.login(user)  # right this time, but too late
    assert response.status_code == 429
    assert "Too many failed attempts" in response.get_data(as_text=True)
    count = db.session.scalar(select(func.count(LoginAttempt.id)))
    assert count == staff_service.MAX_FAILURES_PER_ACCOUNT


def test_throttle_ends_after_the_window(create_staff: Callable[..., StaffUser]) -> None:
    user = create_staff("trust_safety")
    start = utcnow()
    for _ in range(staff_service.MAX_FAILURES_PER_ACCOUNT):
        with pytest.raises(staff_service.LoginRefused):
            staff_service.authenticate(
                db.session,
                email=user.email,
                password="x",
                code="1",
                remote_addr="192.0.2.1",
                now=start,
            )
    with pytest.raises(staff_service.LoginThrottled):
        staff_service.authenticate(
            db.session,
            email=user.email,
            password=STAFF_PASSWORD,
            code="1",
            remote_addr="192.0.2.1",
            now=start,
        )
    later = start + staff_service.THROTTLE_WINDOW + timedelta(seconds=1)
    signed_in = staff_service.authenticate(
        db.session,
        email=user.email,
        password=STAFF_PASSWORD,
        code=unused_code(user, later),
        remote_addr="192.0.2.1",
        now=later,
    )
    assert signed_in.id == user.id


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
