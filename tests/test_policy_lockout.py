"""The lockout rule's properties, checked with hypothesis: monotone, bounded, explained."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from portal.policy.abuse import (
    LOCKOUT_MAX_DAYS,
    Intent,
    LockoutFactors,
    Seriousness,
    propose_lockout_days,
)

SERIOUSNESS = list(Seriousness)
INTENTS = list(Intent)

factors = st.builds(
    LockoutFactors,
    seriousness=st.sampled_from(SERIOUSNESS),
    marks_since_warning=st.integers(min_value=1, max_value=100),
    marks_last_30_days=st.integers(min_value=1, max_value=100),
    proportion_marked=st.floats(min_value=0, max_value=1, allow_nan=False),
    intent=st.sampled_from(INTENTS),
    previous_lockouts=st.integers(min_value=0, max_value=20),
)


def days(f: LockoutFactors) -> int:
    return propose_lockout_days(f).days


@given(factors)
def test_bounded(f: LockoutFactors) -> None:
    assert 1 <= days(f) <= LOCKOUT_MAX_DAYS


@given(factors)
def test_explained_factor_by_factor(f: LockoutFactors) -> None:
    proposal = propose_lockout_days(f)
    assert sum(c.days for c in proposal.contributions) == proposal.days
    names = [c.name for c in proposal.contributions]
    for expected in ("seriousness", "marks since", "last 30 days", "share", "intent", "earlier"):
        assert any(expected in name for name in names)


@given(factors, st.integers(min_value=1, max_value=10))
def test_monotone_in_number_frequency_and_repeats(f: LockoutFactors, more: int) -> None:
    assert days(replace(f, marks_since_warning=f.marks_since_warning + more)) >= days(f)
    assert days(replace(f, marks_last_30_days=f.marks_last_30_days + more)) >= days(f)
    assert days(replace(f, previous_lockouts=f.previous_lockouts + more)) >= days(f)


@given(factors, st.floats(min_value=0, max_value=1, allow_nan=False))
def test_monotone_in_proportion(f: LockoutFactors, other: float) -> None:
    low, high = sorted((f.proportion_marked, other))
    assert days(replace(f, proportion_marked=low)) <= days(replace(f, proportion_marked=high))


@given(factors)
def test_monotone_in_seriousness_and_intent(f: LockoutFactors) -> None:
    by_seriousness = [days(replace(f, seriousness=s)) for s in SERIOUSNESS]
    assert by_seriousness == sorted(by_seriousness)
    by_intent = [days(replace(f, intent=i)) for i in INTENTS]
    assert by_intent == sorted(by_intent)


def test_examples_from_the_published_policy() -> None:
    first = LockoutFactors(Seriousness.MINOR, 1, 1, 0.1, Intent.GOOD_FAITH)
    assert days(first) == 13
    worst = LockoutFactors(Seriousness.SEVERE, 10, 10, 1.0, Intent.BAD_FAITH, previous_lockouts=2)
    assert days(worst) == LOCKOUT_MAX_DAYS
