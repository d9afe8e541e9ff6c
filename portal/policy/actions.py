"""Office actions as the policy describes them: what each needs, who handles it, how fast.

The rules of "Requesting an office action" and "Timeline of office actions"
(``office-actions-policy.txt``): the actions people may ask for, the team and priority each
goes to, the clock each runs on (calendar time, or US business days for DMCA notices), and
the kinds and statuses of the cases that carry them, with the one set of statuses that counts
as open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from portal.policy.routing import Team

# Business days are counted where the Legal team works: the Foundation is in San Francisco.
# A notice that lands on a Friday evening there is not "received" on Saturday in UTC.
LEGAL_TIMEZONE = ZoneInfo("America/Los_Angeles")


class ActionType(StrEnum):
    GLOBAL_BAN = "global_ban"
    EVENT_BAN = "event_ban"
    DMCA = "dmca"
    CHILD_PROTECTION = "child_protection"
    CONDUCT_WARNING = "conduct_warning"
    RIGHTS_REMOVAL = "rights_removal"
    PAGE_PROTECTION = "page_protection"
    RANGE_BLOCK = "range_block"


class Priority(StrEnum):
    URGENT = "urgent"
    NORMAL = "normal"


class CaseKind(StrEnum):
    REQUEST = "request"
    APPEAL = "appeal"
    DMCA_NOTICE = "dmca_notice"
    DMCA_COUNTER_NOTICE = "dmca_counter_notice"
    INQUIRY = "inquiry"


class CaseStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    WAITING = "waiting"
    IN_REVIEW = "in_review"
    DECIDED = "decided"
    CLOSED = "closed"


#: A case in one of these is in a queue: counted on the inbox, listed by default, its clock
#: shown, and (for an appeal) blocking a second appeal of the same decision.
OPEN_STATUSES: tuple[CaseStatus, ...] = (
    CaseStatus.NEW,
    CaseStatus.OPEN,
    CaseStatus.WAITING,
    CaseStatus.IN_REVIEW,
)


class Decision(StrEnum):
    """What staff decide on a request: a decision not to act can be appealed too."""

    GRANTED = "granted"
    DECLINED = "declined"


DECISIONS: frozenset[str] = frozenset(Decision)


class PriorAttempts(StrEnum):
    """How the policy treats attempts through local community processes for an action."""

    #: "Provides evidence (URLs) that there have already been attempts ... where applicable and
    #: where possible": URLs, or a reason why there were none.
    REQUIRED = "required"
    #: Welcome but not a condition (DMCA: the policy only *encourages* the VRT route first).
    OPTIONAL = "optional"
    #: Never asked: nothing may slow down a child protection report.
    NEVER = "never"


@dataclass(frozen=True)
class Clock:
    """A policy timeline: either calendar time or a number of US business days."""

    calendar: timedelta | None = None
    business_days: int | None = None

    def due(self, received_at: datetime) -> datetime:
        if self.calendar is not None:
            return received_at + self.calendar
        if self.business_days is None:
            raise ValueError("a clock needs either calendar time or business days")
        return add_business_days(received_at, self.business_days)


SUMMARY_MAX_WORDS = 300


@dataclass(frozen=True)
class ActionRule:
    action: ActionType
    label: str
    explanation: str
    team: Team
    priority: Priority
    clock: Clock | None
    prior_attempts: PriorAttempts
    kind: CaseKind = CaseKind.REQUEST
    #: an event ban is limited by place, project or time: the form asks for at least one
    event_scope: bool = False
    #: "a succinct summary": at most this many words; None where nothing may hold it up
    summary_max_words: int | None = SUMMARY_MAX_WORDS


FOUR_WEEKS = Clock(calendar=timedelta(weeks=4))

RULES: dict[ActionType, ActionRule] = {
    rule.action: rule
    for rule in (
        ActionRule(
            ActionType.GLOBAL_BAN,
            "Global ban",
            "Bars a person from all Wikimedia sites, platforms and events: a last resort for "
            "severe or repeated misconduct.",
            Team.TRUST_SAFETY,
            Priority.NORMAL,
            FOUR_WEEKS,
            PriorAttempts.REQUIRED,
        ),
        ActionRule(
            ActionType.EVENT_BAN,
            "Event ban",
            "Bars a person from in-person events, limited to a place, a project or a period.",
            Team.TRUST_SAFETY,
            Priority.NORMAL,
            FOUR_WEEKS,
            PriorAttempts.REQUIRED,
            event_scope=True,
        ),
        ActionRule(
            ActionType.DMCA,
            "DMCA takedown",
            "Removal of material that infringes your copyright, reviewed by the Legal team.",
            Team.LEGAL,
            Priority.NORMAL,
            Clock(business_days=7),
            PriorAttempts.OPTIONAL,
            kind=CaseKind.DMCA_NOTICE,
        ),
        ActionRule(
            ActionType.CHILD_PROTECTION,
            "Child protection",
            "A minor may be at risk. Reviewed as a matter of priority, within 24 hours.",
            Team.TRUST_SAFETY,
            Priority.URGENT,
            Clock(calendar=timedelta(hours=24)),
            PriorAttempts.NEVER,
            # The policy: reviewed "right away"; a word limit would only slow the report.
            summary_max_words=None,
        ),
        ActionRule(
            ActionType.CONDUCT_WARNING,
            "Conduct warning",
            "A confidential warning meant to stop problematic behaviour before it escalates.",
            Team.TRUST_SAFETY,
            Priority.NORMAL,
            None,
            PriorAttempts.REQUIRED,
        ),
        ActionRule(
            ActionType.RIGHTS_REMOVAL,
            "Removal of advanced rights",
            "For major breaches of trust by functionaries or others with advanced tools.",
            Team.TRUST_SAFETY,
            Priority.NORMAL,
            None,
            PriorAttempts.REQUIRED,
        ),
        ActionRule(
            ActionType.PAGE_PROTECTION,
            "Page protection",
            "Foundation protection of a page: only in the rarest cases, typically with a court "
            "order or a substantial risk to safety.",
            Team.TRUST_SAFETY,
            Priority.NORMAL,
            None,
            PriorAttempts.REQUIRED,
        ),
        ActionRule(
            ActionType.RANGE_BLOCK,
            "Range block",
            "Blocks a range of IP addresses, usually to enforce a global ban.",
            Team.TRUST_SAFETY,
            Priority.NORMAL,
            None,
            PriorAttempts.REQUIRED,
        ),
    )
}


def rule_for(action: ActionType | str) -> ActionRule:
    return RULES[ActionType(action)]


def due_at(action: ActionType | str, received_at: datetime) -> datetime | None:
    """When the policy timeline for ``action`` runs out, or None where the policy sets none."""
    clock = rule_for(action).clock
    return None if clock is None else clock.due(received_at)


def prior_attempts_required(action: ActionType | str) -> bool:
    return rule_for(action).prior_attempts is PriorAttempts.REQUIRED


@lru_cache(maxsize=32)
def _us_federal_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("US", years=year)


def is_business_day(day: date) -> bool:
    """Monday to Friday, and not a US federal holiday (observed dates included)."""
    return day.weekday() < 5 and day not in _us_federal_holidays(day.year)


def add_business_days(start: datetime, days: int, tz: ZoneInfo = LEGAL_TIMEZONE) -> datetime:
    """``start`` moved forward by ``days`` business days, keeping its local time of day.

    Counting happens on the calendar in ``tz``. A notice received on a Saturday morning is due
    at the same time of day on the seventh business day after it, so the weekend it arrived on
    never counts. The result has ``start``'s time zone.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    local = start.astimezone(tz)
    day = local.date()
    remaining = days
    while remaining:
        day += timedelta(days=1)
        if is_business_day(day):
            remaining -= 1
    due_local = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=tz)
    return due_local.astimezone(start.tzinfo)
