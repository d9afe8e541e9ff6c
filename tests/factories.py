"""Factory fixtures: callables that make staff, cases and mail with sensible defaults."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal.extensions import db
from portal.models import Case, StaffUser
from portal.models.base import utcnow
from portal.policy.actions import ActionType
from portal.services import staff as staff_service
from portal.services.cases import RequestSubmission, open_request
from tests.conftest import csrf_token

STAFF_PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fast_password_hashing() -> Iterator[None]:
    """Argon2 at its cheapest: the tests check the flow, not the cost."""
    staff_service.set_password_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    yield
    staff_service.set_password_hasher(PasswordHasher())


def unused_code(user: StaffUser, now: datetime | None = None) -> str:
    """A valid TOTP code the account has not used yet (codes are single-use)."""
    totp = pyotp.TOTP(user.totp_secret or "")
    step = totp.timecode(now or utcnow())
    if user.last_totp_step is not None and user.last_totp_step >= step - 1:
        step = user.last_totp_step + 1
    return totp.generate_otp(step)


@pytest.fixture
def create_staff(app: Flask) -> Callable[..., StaffUser]:
    counter = iter(range(1, 10_000))

    def make(*roles: str, email: str | None = None, name: str | None = None) -> StaffUser:
        number = next(counter)
        created = staff_service.create_staff(
            db.session,
            email=email or f"staff{number}@foundation.example",
            roles=list(roles) or ["trust_safety"],
            password=STAFF_PASSWORD,
            name=name or f"Staff {number}",
        )
        db.session.commit()
        return created.user

    return make


@pytest.fixture
def create_case(app: Flask) -> Callable[..., Case]:
    counter = iter(range(1, 10_000))

    def make(
        action: str = "global_ban",
        *,
        requester_email: str | None = None,
        summary: str = "Harassment across wikis",
        now: datetime | None = None,
        **fields: Any,
    ) -> Case:
        number = next(counter)
        case = open_request(
            db.session,
            RequestSubmission(
                action=ActionType(action),
                summary=summary,
                requester_email=requester_email or f"requester{number}@example.org",
                requester_name=f"Requester {number}",
            ),
            now=now,
        )
        for key, value in fields.items():
            setattr(case, key, value)
        db.session.commit()
        return case

    return make


@dataclass
class Auth:
    client: FlaskClient

    def login(
        self,
        user: StaffUser,
        code: str | None = None,
        password: str = STAFF_PASSWORD,
        email: str | None = None,
    ) -> TestResponse:
        page = self.client.get("/staff/login")
        return self.client.post(
            "/staff/login",
            data={
                "email": email or user.email,
                "password": password,
                "code": code if code is not None else unused_code(user),
                "csrf_token": csrf_token(page),
            },
        )

    def logout(self) -> TestResponse:
        page = self.client.get("/staff/")
        return self.client.post("/staff/logout", data={"csrf_token": csrf_token(page)})


@pytest.fixture
def auth(client: FlaskClient) -> Auth:
    return Auth(client)
