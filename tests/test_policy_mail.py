"""When an acknowledgement goes out (portal.policy.mail), at its edges, with a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.policy.mail import (
    ACK_MAX_AGE,
    ACKS_PER_ADDRESS_PER_DAY,
    why_no_acknowledgement,
    within_daily_limit,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def refusal(
    *,
    auto_submitted: bool = False,
    bounce: bool = False,
    dmarc: str | None = "pass",
    arrived_at: datetime = NOW,
) -> str | None:
    return why_no_acknowledgement(
        auto_submitted=auto_submitted, bounce=bounce, dmarc=dmarc, age=NOW - arrived_at
    )


def test_mail_from_a_person_just_arrived_is_acknowledged() -> None:
    assert refusal() is None
    # No DMARC verdict at all (a domain that publishes none) is not a failure.
    assert refusal(dmarc=None) is None
    assert refusal(dmarc="none") is None


@pytest.mark.parametrize(
    "facts",
    [{"auto_submitted": True}, {"bounce": True}, {"auto_submitted": True, "bounce": True}],
)
def test_machines_and_bounces_are_never_answered(facts: dict[str, bool]) -> None:
    assert "loop" in (refusal(**facts) or "")


def test_a_from_that_failed_dmarc_is_never_answered() -> None:
    assert "backscatter" in (refusal(dmarc="fail") or "")


def test_mail_is_history_after_exactly_three_days() -> None:
    assert timedelta(days=3) == ACK_MAX_AGE
    assert refusal(arrived_at=NOW - ACK_MAX_AGE) is None
    assert refusal(arrived_at=NOW - ACK_MAX_AGE - timedelta(seconds=1)) is not None


def test_the_daily_limit_lets_the_fifth_through_and_stops_the_sixth() -> None:
    assert ACKS_PER_ADDRESS_PER_DAY == 5
    assert within_daily_limit(0)
    assert within_daily_limit(4)
    assert not within_daily_limit(5)
    assert within_daily_limit(5, limit=6)
    assert not within_daily_limit(0, limit=0)
