"""The abuse rules besides the lockout length (tests/test_policy_lockout.py): overriding it,
when a lockout is in force, and what stays open during one. A fixed clock, no app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.policy.abuse import (
    LOCKOUT_EXAMPLES,
    LOCKOUT_MAX_DAYS,
    in_force,
    legally_open_channel,
    open_during_lockout,
    propose_lockout_days,
    why_not_override,
)
from portal.policy.actions import ActionType

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
END = START + timedelta(days=30)


@pytest.mark.parametrize(
    ("days", "allowed"),
    [(0, False), (1, True), (LOCKOUT_MAX_DAYS, True), (LOCKOUT_MAX_DAYS + 1, False), (-5, False)],
)
def test_an_override_stays_within_the_rules_bound(days: int, allowed: bool) -> None:
    assert (why_not_override(days, "Repeated threats by phone as well.") is None) is allowed


@pytest.mark.parametrize("reason", [None, "", "   \n"])
def test_an_override_needs_a_written_reason(reason: str | None) -> None:
    assert why_not_override(10, reason) == (
        "Give a written reason for a length other than the proposed one."
    )


def test_a_lockout_is_in_force_from_its_start_until_its_end() -> None:
    tick = timedelta(microseconds=1)
    assert not in_force(START, END, None, START - tick)
    assert in_force(START, END, None, START)
    assert in_force(START, END, None, END - tick)
    assert not in_force(START, END, None, END)


def test_a_lifted_lockout_is_not_in_force() -> None:
    assert not in_force(START, END, START + timedelta(days=1), START + timedelta(days=2))


@pytest.mark.parametrize("action", list(ActionType))
def test_only_child_protection_is_taken_from_a_locked_out_reporter(action: ActionType) -> None:
    assert open_during_lockout(action) is (action is ActionType.CHILD_PROTECTION)
    assert open_during_lockout(action.value) is (action is ActionType.CHILD_PROTECTION)


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        ("Child protection concern", None, "child protection"),
        (None, "This user is grooming a minor", "child protection"),
        ("Re: your lockout", "Attached: a SUBPOENA from the district court", "court order"),
        ("Why am I blocked?", "I demand to be unblocked", None),
        (None, None, None),
    ],
)
def test_the_channels_the_law_keeps_open(
    subject: str | None, body: str | None, expected: str | None
) -> None:
    assert legally_open_channel(subject, body) == expected


def test_the_worked_examples_grow_with_their_factors() -> None:
    days = [propose_lockout_days(factors).days for _text, factors in LOCKOUT_EXAMPLES]
    assert days == sorted(days)
    assert all(1 <= d <= LOCKOUT_MAX_DAYS for d in days)
