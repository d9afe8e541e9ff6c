"""The pure rules of staff sign-in and sessions (portal/signin.py), at their boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.signin import (
    FIRST_DELAY,
    FREE_FAILURES,
    MAX_DELAY,
    SessionEnd,
    account_key,
    delay_after,
    session_end,
    throttle_address,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
IDLE, LIFETIME = timedelta(minutes=60), timedelta(hours=10)


def test_the_first_mistakes_are_free_then_the_wait_doubles() -> None:
    assert [delay_after(n) for n in range(FREE_FAILURES)] == [timedelta(0)] * FREE_FAILURES
    assert delay_after(FREE_FAILURES) == FIRST_DELAY
    assert delay_after(FREE_FAILURES + 1) == 2 * FIRST_DELAY
    assert delay_after(FREE_FAILURES + 4) == 16 * FIRST_DELAY


@given(st.integers(min_value=0, max_value=10_000))
def test_the_wait_never_shrinks_and_never_passes_the_cap(failures: int) -> None:
    assert delay_after(failures) <= delay_after(failures + 1) <= MAX_DELAY


def test_the_cap_is_reached() -> None:
    assert delay_after(10**9) == MAX_DELAY


@pytest.mark.parametrize(
    ("remote_addr", "counted_as"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        (None, "unknown"),
        ("", "unknown"),
        ("not an address", "not an address"),
    ],
)
def test_throttle_address(remote_addr: str | None, counted_as: str) -> None:
    assert throttle_address(remote_addr) == counted_as


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("JOSÉ@EXÄMPLE.COM", "josé@exämple.com"),
        ("josé@xn--exmple-cua.com", "josé@exämple.com"),
        ("jose\u0301@exämple.com", "josé@exämple.com"),  # decomposed é
        (" 用户@例子.广告 ", "用户@例子.广告"),
        ("  Not An Address ", "not an address"),
    ],
)
def test_account_key(typed: str, key: str) -> None:
    assert account_key(typed) == key


def end(**changes: Any) -> SessionEnd | None:
    values: dict[str, Any] = {
        "session_version": 3,
        "account_version": 3,
        "signed_in_at": (NOW - timedelta(hours=1)).timestamp(),
        "last_seen_at": (NOW - timedelta(minutes=1)).timestamp(),
        "now": NOW,
        "idle": IDLE,
        "lifetime": LIFETIME,
    }
    values.update(changes)
    return session_end(**values)


def test_a_current_session_goes_on() -> None:
    assert end() is None


@pytest.mark.parametrize("version", [2, 4, None])
def test_a_session_of_another_version_has_ended(version: int | None) -> None:
    assert end(session_version=version) is SessionEnd.ENDED


@pytest.mark.parametrize("missing", ["signed_in_at", "last_seen_at"])
def test_a_session_without_its_times_has_ended(missing: str) -> None:
    assert end(**{missing: None}) is SessionEnd.ENDED


def test_idle_limit_boundary() -> None:
    assert end(last_seen_at=(NOW - IDLE).timestamp()) is None
    idle_a_second_too_long = (NOW - IDLE - timedelta(seconds=1)).timestamp()
    assert end(last_seen_at=idle_a_second_too_long) is SessionEnd.IDLE


def test_lifetime_boundary_whatever_the_activity() -> None:
    assert end(signed_in_at=(NOW - LIFETIME).timestamp()) is None
    too_old = (NOW - LIFETIME - timedelta(seconds=1)).timestamp()
    assert end(signed_in_at=too_old, last_seen_at=NOW.timestamp()) is SessionEnd.EXPIRED
