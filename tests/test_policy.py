"""The policy rules, tested directly: no app, no database, a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.policy.actions import (
    LEGAL_TIMEZONE,
    RULES,
    SUMMARY_MAX_WORDS,
    ActionType,
    CaseKind,
    PriorAttempts,
    Priority,
    add_business_days,
    due_at,
    is_business_day,
    prior_attempts_required,
    rule_for,
)
from portal.policy.routing import Team

PT = LEGAL_TIMEZONE


def test_every_action_of_the_form_contract_has_a_rule() -> None:
    assert {a.value for a in RULES} == {
        "global_ban",
        "event_ban",
        "dmca",
        "child_protection",
        "conduct_warning",
        "rights_removal",
        "page_protection",
        "range_block",
    }
    assert all(rule.explanation.endswith(".") for rule in RULES.values())


@pytest.mark.parametrize(
    ("action", "team", "priority"),
    [
        ("dmca", Team.LEGAL, Priority.NORMAL),
        ("child_protection", Team.TRUST_SAFETY, Priority.URGENT),
        ("global_ban", Team.TRUST_SAFETY, Priority.NORMAL),
        ("event_ban", Team.TRUST_SAFETY, Priority.NORMAL),
        ("conduct_warning", Team.TRUST_SAFETY, Priority.NORMAL),
        ("rights_removal", Team.TRUST_SAFETY, Priority.NORMAL),
        ("page_protection", Team.TRUST_SAFETY, Priority.NORMAL),
        ("range_block", Team.TRUST_SAFETY, Priority.NORMAL),
    ],
)
def test_routing(action: str, team: Team, priority: Priority) -> None:
    rule = rule_for(action)
    assert (rule.team, rule.priority) == (team, priority)


def test_dmca_opens_a_dmca_notice() -> None:
    assert rule_for("dmca").kind is CaseKind.DMCA_NOTICE
    assert rule_for("global_ban").kind is CaseKind.REQUEST


def test_prior_attempts_per_action() -> None:
    assert rule_for("child_protection").prior_attempts is PriorAttempts.NEVER
    assert rule_for("dmca").prior_attempts is PriorAttempts.OPTIONAL
    for action in ("global_ban", "event_ban", "conduct_warning", "range_block"):
        assert prior_attempts_required(action)
    assert not prior_attempts_required("child_protection")


def test_bans_get_four_calendar_weeks() -> None:
    received = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
    assert due_at("global_ban", received) == received + timedelta(weeks=4)
    assert due_at(ActionType.EVENT_BAN, received) == received + timedelta(weeks=4)


def test_child_protection_gets_24_hours_even_on_a_holiday() -> None:
    thanksgiving = datetime(2026, 11, 26, 8, 0, tzinfo=PT)
    assert due_at("child_protection", thanksgiving) == thanksgiving + timedelta(hours=24)


@pytest.mark.parametrize("action", ["conduct_warning", "rights_removal", "page_protection"])
def test_actions_without_a_timeline_have_no_due_date(action: str) -> None:
    assert due_at(action, datetime(2026, 11, 21, tzinfo=UTC)) is None


def test_dmca_seven_business_days_across_a_weekend_and_a_holiday() -> None:
    # Saturday 7 Nov 2026; Wednesday 11 Nov is Veterans Day.
    received = datetime(2026, 11, 7, 9, 0, tzinfo=PT)
    assert due_at("dmca", received) == datetime(2026, 11, 18, 9, 0, tzinfo=PT)


def test_dmca_across_thanksgiving() -> None:
    # Wednesday 25 Nov; Thursday 26 Nov 2026 is Thanksgiving.
    received = datetime(2026, 11, 25, 10, 0, tzinfo=PT)
    assert due_at("dmca", received) == datetime(2026, 12, 7, 10, 0, tzinfo=PT)


def test_business_days_are_counted_on_the_legal_teams_calendar() -> None:
    # Friday 23:30 in San Francisco is already Saturday in UTC; Friday is what counts.
    friday_evening = datetime(2026, 11, 14, 7, 30, tzinfo=UTC)  # Fri 13 Nov 23:30 PT
    due = add_business_days(friday_evening, 1)
    assert due.tzinfo is UTC
    assert due.astimezone(PT) == datetime(2026, 11, 16, 23, 30, tzinfo=PT)


def test_business_day_calendar() -> None:
    assert is_business_day(datetime(2026, 11, 20).date())  # Friday
    assert not is_business_day(datetime(2026, 11, 21).date())  # Saturday
    assert not is_business_day(datetime(2026, 12, 25).date())  # Christmas
    assert not is_business_day(datetime(2027, 7, 5).date())  # Independence Day, observed


def test_zero_business_days_is_the_same_instant() -> None:
    start = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert add_business_days(start, 0) == start
    with pytest.raises(ValueError, match="negative"):
        add_business_days(start, -1)


def test_a_summary_is_succinct_except_for_child_protection() -> None:
    """300 words for every action, and no limit at all where nothing may slow a report."""
    limits = {action: rule.summary_max_words for action, rule in RULES.items()}
    assert limits.pop(ActionType.CHILD_PROTECTION) is None
    assert set(limits.values()) == {SUMMARY_MAX_WORDS} == {300}


def test_only_an_event_ban_asks_for_its_scope() -> None:
    assert [a for a, rule in RULES.items() if rule.event_scope] == [ActionType.EVENT_BAN]
