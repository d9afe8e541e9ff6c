"""The appeal rules of portal.policy.appeals, each at its boundary, with a fixed clock (issue 5)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.policy.appeals import (
    REFUSALS,
    DecisionFacts,
    Refusal,
    Route,
    add_months,
    appeal_deadline,
    assess,
)

DECIDED = datetime(2026, 8, 31, 15, 0, tzinfo=UTC)


def facts(**changes: object) -> DecisionFacts:
    values: dict[str, object] = {
        "kind": "request",
        "action": "global_ban",
        "team": "trust_safety",
        "decision": "granted",
        "notified_at": DECIDED,
    }
    values.update(changes)
    return DecisionFacts(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2027, 8, 31), 6, date(2028, 2, 29)),  # leap year
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 7, 15), 6, date(2027, 1, 15)),
        (date(2026, 12, 1), 1, date(2027, 1, 1)),
        (date(2026, 6, 30), 0, date(2026, 6, 30)),
        (date(2026, 2, 28), 12, date(2027, 2, 28)),
    ],
)
def test_add_months_clamps_to_the_end_of_a_shorter_month(
    start: date, months: int, expected: date
) -> None:
    assert add_months(start, months) == expected


def test_six_months_from_31_august_ends_with_the_last_day_of_february() -> None:
    assert appeal_deadline(DECIDED) == date(2027, 2, 28)
    last_moment = datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC)
    assert assess(facts(), filed_at=last_moment).eligible
    too_late = assess(facts(), filed_at=last_moment + timedelta(seconds=1))
    assert too_late.refusal is Refusal.TOO_LATE
    assert too_late.deadline == date(2027, 2, 28)
    assert "28 February 2027" in (too_late.message(legal_address="legal@x") or "")


def test_the_last_day_is_counted_in_utc() -> None:
    # Half past midnight on 1 March in Paris is still 28 February in UTC: in time.
    paris = datetime(2027, 3, 1, 0, 30, tzinfo=ZoneInfo("Europe/Paris"))
    assert assess(facts(), filed_at=paris).eligible
    # Late evening on 28 February in Los Angeles is already 1 March in UTC: too late.
    los_angeles = datetime(2027, 2, 28, 17, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert assess(facts(), filed_at=los_angeles).refusal is Refusal.TOO_LATE


def test_only_a_substantial_modification_restarts_the_window() -> None:
    modified = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    late_for_decision = datetime(2027, 3, 15, tzinfo=UTC)
    assert assess(facts(), filed_at=late_for_decision).refusal is Refusal.TOO_LATE
    restarted = facts(modified_at=modified)
    assert assess(restarted, filed_at=late_for_decision).eligible
    assert assess(restarted, filed_at=datetime(2027, 5, 30, 23, 59, tzinfo=UTC)).eligible
    assert (
        assess(restarted, filed_at=datetime(2027, 5, 31, 0, 0, tzinfo=UTC)).refusal
        is Refusal.TOO_LATE
    )
    # A modification recorded before the decision (data from an import) never shortens it.
    earlier = facts(modified_at=DECIDED - timedelta(days=30))
    assert assess(earlier, filed_at=datetime(2027, 2, 28, 12, tzinfo=UTC)).eligible


@pytest.mark.parametrize("decision", [None, "pending", ""])
def test_no_decision_no_appeal(decision: str | None) -> None:
    result = assess(facts(decision=decision), filed_at=DECIDED)
    assert result.refusal is Refusal.NOT_DECIDED
    assert assess(facts(notified_at=None), filed_at=DECIDED).refusal is Refusal.NOT_DECIDED


@pytest.mark.parametrize("decision", ["granted", "declined"])
def test_decisions_to_act_and_not_to_act_are_both_appealable(decision: str) -> None:
    result = assess(facts(decision=decision), filed_at=DECIDED + timedelta(days=1))
    assert (result.eligible, result.route) == (True, Route.COMMITTEE)


def test_a_dmca_removal_points_to_the_counter_notice() -> None:
    removal = facts(action="dmca", kind="dmca_notice", team="legal")
    result = assess(removal, filed_at=DECIDED)
    assert result.refusal is Refusal.DMCA_REMOVAL
    assert "counter-notice" in (result.message(legal_address="legal@example.org") or "")
    assert "legal@example.org" in (result.message(legal_address="legal@example.org") or "")
    # A decision *not* to remove is a legal matter: Legal decides whether it is eligible.
    declined = assess(
        facts(action="dmca", kind="dmca_notice", team="legal", decision="declined"),
        filed_at=DECIDED,
    )
    assert (declined.eligible, declined.route) == (True, Route.LEGAL)


def test_event_ban_part_of_a_global_ban_is_not_appealable() -> None:
    ban = facts(action="event_ban", part_of_global_ban=True, has_end_date=True)
    assert assess(ban, filed_at=DECIDED).refusal is Refusal.PART_OF_GLOBAL_BAN
    # Declined: no ban exists, the flag means nothing.
    assert assess(
        facts(action="event_ban", decision="declined", part_of_global_ban=True), filed_at=DECIDED
    ).eligible


@pytest.mark.parametrize(
    ("has_end_date", "irrevocable", "route"),
    [
        (False, False, Route.TRUST_SAFETY),
        (True, False, Route.COMMITTEE),
        (False, True, Route.COMMITTEE),
        (True, True, Route.COMMITTEE),
    ],
)
def test_open_ended_revocable_event_ban_goes_to_trust_and_safety(
    has_end_date: bool, irrevocable: bool, route: Route
) -> None:
    ban = facts(action="event_ban", has_end_date=has_end_date, irrevocable=irrevocable)
    result = assess(ban, filed_at=DECIDED)
    assert result.route is route
    assert (result.route_reason is not None) == (route is not Route.COMMITTEE)


def test_legal_cases_are_routed_to_legal_for_eligibility() -> None:
    result = assess(facts(action="page_protection", team="legal"), filed_at=DECIDED)
    assert result.route is Route.LEGAL
    assert "remit" in (result.route_reason or "")


def test_child_protection_appeals_stay_with_trust_and_safety() -> None:
    result = assess(facts(action="child_protection"), filed_at=DECIDED)
    assert result.route is Route.TRUST_SAFETY


def test_one_open_appeal_per_decision_and_one_review() -> None:
    assert assess(facts(), filed_at=DECIDED, open_appeal=True).refusal is Refusal.OPEN_APPEAL
    assert (
        assess(facts(), filed_at=DECIDED, already_reviewed=True).refusal is Refusal.ALREADY_REVIEWED
    )


def test_an_appeal_outcome_is_not_appealed_again() -> None:
    assert assess(facts(kind="appeal", decision=None), filed_at=DECIDED).refusal is (
        Refusal.APPEAL_OUTCOME
    )


def test_every_refusal_is_one_sentence_that_says_what_to_do_instead() -> None:
    for refusal, text in REFUSALS.items():
        sentence = text.format(deadline="1 March 2027", legal="legal@example.org")
        assert sentence.endswith("."), refusal
        assert sentence.count(". ") == 0, f"{refusal}: more than one sentence"
        assert ":" in sentence, f"{refusal}: why, then what to do instead"
