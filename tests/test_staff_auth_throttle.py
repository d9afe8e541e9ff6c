"""Staff sign-in under attack: throttled per (account, address) with growing delays and a cap
per address, in the database (two workers agree), constant work for unknown accounts, and
client addresses seen through PORTAL_TRUSTED_PROXIES. Regression tests for section 4 of the
issue "Keep every promise under concurrency, hostile mail and non-ASCII addresses"."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import argon2
import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import LoginAttempt, LoginThrottle, StaffUser
from portal.models.base import utcnow
from portal.services import staff as staff_service
from portal.signin import (
    ADDRESS_WINDOW,
    FREE_FAILURES,
    MAX_ATTEMPTS_PER_ADDRESS,
    delay_after,
)
from tests.conftest import post_form
from tests.factories import STAFF_PASSWORD, Auth, unused_code
from tests.public_data import valid_request

ROOT = Path(__file__).resolve().parent.parent
ATTACKER, STAFF_HOME, PROXY = "198.51.100.7", "192.0.2.10", "10.0.0.2"


def client_at(app: Flask, address: str, forwarded_for: str | None = None) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    if forwarded_for:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client


def attempt(user: StaffUser, *, address: str, now: Any, **kw: Any) -> str:
    """One sign-in through the service at a fixed clock: its outcome in a word."""
    try:
        staff_service.authenticate(
            db.session,
            email=kw.get("email", user.email),
            password=kw.get("password", "a wrong password"),
            code=kw.get("code") or unused_code(user, now),
            remote_addr=address,
            now=now,
        )
        outcome = "signed in"
    except staff_service.LoginRefused:
        outcome = "refused"
    except staff_service.LoginThrottled as exc:
        outcome = f"wait {int(exc.retry_after.total_seconds())}"
    db.session.commit()
    return outcome


# Issue section 4: "Five failures lock any account for everyone".
def test_failures_from_one_address_do_not_lock_the_account_out_elsewhere(
    app: Flask, create_staff: Callable[..., StaffUser]
) -> None:
    user = create_staff("trust_safety")
    attacker = Auth(client_at(app, ATTACKER))
    outcomes = [attacker.login(user, password="wrong password").status_code for _ in range(8)]
    assert outcomes == [400] * FREE_FAILURES + [429] * (8 - FREE_FAILURES)
    assert Auth(client_at(app, STAFF_HOME)).login(user).status_code == 302


def test_a_pairs_delays_grow_then_cap_and_a_success_starts_it_afresh(
    create_staff: Callable[..., StaffUser],
) -> None:
    user = create_staff("legal")
    now = utcnow()
    for _ in range(FREE_FAILURES):
        assert attempt(user, address=ATTACKER, now=now) == "refused"
    waits = []
    for failures in range(FREE_FAILURES, FREE_FAILURES + 4):
        waits.append(attempt(user, address=ATTACKER, now=now))
        now += delay_after(failures)
        assert attempt(user, address=ATTACKER, now=now) == "refused"
    assert waits == ["wait 5", "wait 10", "wait 20", "wait 40"]
    now += delay_after(FREE_FAILURES + 4)
    assert attempt(user, address=ATTACKER, now=now, password=STAFF_PASSWORD) == "signed in"
    assert attempt(user, address=ATTACKER, now=now) == "refused"  # three free mistakes again
    assert db.session.scalar(select(LoginThrottle.failures)) == 1


def test_a_pair_quiet_for_a_day_starts_again_from_zero(
    create_staff: Callable[..., StaffUser],
) -> None:
    user = create_staff("legal")
    now = utcnow()
    for failures in range(8):
        assert attempt(user, address=ATTACKER, now=now) == "refused"
        now += delay_after(failures + 1)
    now += timedelta(hours=24)
    assert attempt(user, address=ATTACKER, now=now) == "refused"
    assert db.session.scalar(select(LoginThrottle.failures)) == 1


def test_an_ipv6_client_counts_as_its_64(create_staff: Callable[..., StaffUser]) -> None:
    user = create_staff("legal")
    now = utcnow()
    for host in range(1, FREE_FAILURES + 1):
        assert attempt(user, address=f"2001:db8:1:2::{host}", now=now) == "refused"
    assert attempt(user, address="2001:db8:1:2::99", now=now).startswith("wait")
    assert attempt(user, address="2001:db8:1:3::1", now=now) == "refused"  # another /64


def test_one_address_cannot_spray_many_accounts(
    create_staff: Callable[..., StaffUser],
) -> None:
    user = create_staff("trust_safety")
    now = utcnow()
    guesses = 0
    while guesses < MAX_ATTEMPTS_PER_ADDRESS:
        email = f"guess{guesses // FREE_FAILURES}@foundation.example"
        assert attempt(user, email=email, address=ATTACKER, now=now) == "refused"
        guesses += 1
    assert attempt(user, address=ATTACKER, now=now, password=STAFF_PASSWORD) == "wait 3600"
    assert attempt(user, address=STAFF_HOME, now=now, password=STAFF_PASSWORD) == "signed in"
    later = now + ADDRESS_WINDOW
    assert attempt(user, address=ATTACKER, now=later, code="000000") == "refused"


def test_unknown_accounts_are_throttled_like_real_ones(
    create_staff: Callable[..., StaffUser],
) -> None:
    """Otherwise the throttle would tell which addresses have accounts."""
    user = create_staff("trust_safety")
    now = utcnow()
    real = [attempt(user, address=ATTACKER, now=now) for _ in range(5)]
    unknown = [
        attempt(user, email="nobody@foundation.example", address=ATTACKER, now=now)
        for _ in range(5)
    ]
    assert real == unknown


def test_the_429_page_says_how_long_to_wait(
    app: Flask, create_staff: Callable[..., StaffUser]
) -> None:
    user = create_staff("trust_safety")
    attacker = Auth(client_at(app, ATTACKER))
    for _ in range(FREE_FAILURES):
        attacker.login(user, password="wrong password")
    response = attacker.login(user, password="wrong password")
    assert response.status_code == 429
    assert re.search(r"Try again in [1-5] seconds?\.", response.get_data(as_text=True))
    assert 1 <= int(response.headers["Retry-After"]) <= 5
    assert 'value="' + user.email + '"' in response.get_data(as_text=True)  # input kept


class CountingHasher(PasswordHasher):
    """Argon2 at test cost that remembers which hashes it verified against."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:  # noqa: A002
        self.verified.append(hash if isinstance(hash, str) else hash.decode())
        return super().verify(hash, password)


@pytest.fixture
def hasher() -> CountingHasher:
    """Put back by the autouse ``fast_password_hashing`` fixture."""
    counting = CountingHasher()
    staff_service.set_password_hasher(counting)
    return counting


# Issue section 4: "A wrong password for an existing account takes 175 ms, for an unknown
# address 9 ms." The work is counted, not timed: one Argon2 verification at the same cost.
@pytest.mark.parametrize("who", ["existing", "unknown", "disabled", "without a password"])
def test_every_sign_in_costs_one_argon2_verification_at_the_same_cost(
    auth: Auth, create_staff: Callable[..., StaffUser], hasher: CountingHasher, who: str
) -> None:
    user = create_staff("legal")
    kwargs: dict[str, Any] = {"password": "a wrong password"}
    if who == "unknown":
        kwargs["email"] = "nobody@foundation.example"
    elif who == "disabled":
        staff_service.disable_staff(db.session, user.email)
        kwargs["password"] = STAFF_PASSWORD
    elif who == "without a password":
        user.password_hash = None
    db.session.commit()
    hasher.verified.clear()
    assert auth.login(user, **kwargs).status_code == 400
    assert len(hasher.verified) == 1
    parameters = argon2.extract_parameters(hasher.verified[0])
    assert (parameters.time_cost, parameters.memory_cost, parameters.parallelism) == (1, 8, 1)


def test_the_same_code_sent_twice_at_once_signs_in_once(
    app: Flask, client: FlaskClient, create_staff: Callable[..., StaffUser]
) -> None:
    """The second request arrives while the first is checking the password."""
    user = create_staff("legal")
    code = unused_code(user)
    second: list[int] = []

    class Interleaving(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:  # noqa: A002
            ok = super().verify(hash, password)
            if not second:
                second.append(0)
                second[0] = Auth(client_at(app, STAFF_HOME)).login(user, code=code).status_code
            return ok

    staff_service.set_password_hasher(Interleaving(time_cost=1, memory_cost=8, parallelism=1))
    first = Auth(client).login(user, code=code).status_code
    assert sorted([first, second[0]]) == [302, 400]


def run_workers(tmp_path: Path, user: StaffUser, addresses: list[str], now: Any) -> list[str]:
    start_at = time.time() + 3  # both interpreters are up and connected by then
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.signin_worker",
                str(tmp_path),
                user.email,
                address,
                "10",
                now.isoformat(),
                str(start_at),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for address in addresses
    ]
    outcomes: list[str] = []
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0
        outcomes += json.loads(out)
    return outcomes


@pytest.mark.parametrize("addresses", [[ATTACKER, ATTACKER], [ATTACKER, STAFF_HOME]])
def test_two_workers_at_once_agree_on_the_throttle(
    tmp_path: Path, create_staff: Callable[..., StaffUser], addresses: list[str]
) -> None:
    """Twenty attempts from two processes at one instant: each pair gets its free mistakes
    and not one more, however the two interleave."""
    user = create_staff("trust_safety")
    db.session.commit()
    outcomes = Counter(run_workers(tmp_path, user, addresses, utcnow()))
    pairs = len(set(addresses))
    assert outcomes == {"refused": FREE_FAILURES * pairs, "throttled": 20 - FREE_FAILURES * pairs}
    assert db.session.scalar(select(func.count(LoginAttempt.id))) == FREE_FAILURES * pairs


# Issue section 4: "behind a reverse proxy all staff share one address and twenty failures
# lock out everyone".
@pytest.mark.parametrize("app_config", [{"TRUSTED_PROXIES": 1}])
def test_behind_a_proxy_one_clients_failures_do_not_lock_out_the_others(
    app: Flask, create_staff: Callable[..., StaffUser]
) -> None:
    user = create_staff("trust_safety")
    attacker = Auth(client_at(app, PROXY, forwarded_for=ATTACKER))
    for number in range(MAX_ATTEMPTS_PER_ADDRESS + 5):
        attacker.login(user, email=f"guess{number}@foundation.example")
    assert attacker.login(user).status_code == 429
    colleague = Auth(client_at(app, PROXY, forwarded_for=STAFF_HOME))
    assert colleague.login(user).status_code == 302
    addresses = set(db.session.scalars(select(LoginAttempt.remote_addr)))
    assert addresses == {ATTACKER}


@pytest.mark.parametrize("app_config", [{"TRUSTED_PROXIES": 1, "REQUEST_RATE_LIMIT": "2 per hour"}])
def test_behind_a_proxy_the_public_limits_count_each_client(app: Flask) -> None:
    first = client_at(app, PROXY, forwarded_for=ATTACKER)
    for _ in range(2):
        assert post_form(first, "/requests/new", valid_request()).status_code == 303
    assert post_form(first, "/requests/new", valid_request()).status_code == 429
    # A client cannot escape by writing its own X-Forwarded-For: only the last hop counts.
    spoofing = client_at(app, PROXY, forwarded_for=f"203.0.113.99, {ATTACKER}")
    assert post_form(spoofing, "/requests/new", valid_request()).status_code == 429
    second = client_at(app, PROXY, forwarded_for=STAFF_HOME)
    assert post_form(second, "/requests/new", valid_request()).status_code == 303


@pytest.mark.parametrize("app_config", [{"REQUEST_RATE_LIMIT": "2 per hour"}])
def test_without_trusted_proxies_x_forwarded_for_is_ignored(app: Flask) -> None:
    for number in range(2):
        client = client_at(app, ATTACKER, forwarded_for=f"203.0.113.{number}")
        assert post_form(client, "/requests/new", valid_request()).status_code == 303
    client = client_at(app, ATTACKER, forwarded_for="203.0.113.50")
    assert post_form(client, "/requests/new", valid_request()).status_code == 429
