"""The office actions policy as plain Python: what each action needs, who handles it, how fast.

Everything here reads like the policy (``office-actions-policy.txt``, "Requesting an office
action" and "Timeline of office actions") and knows nothing of Flask or the database, so the
rules can be tested in microseconds and changed in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

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


class Team(StrEnum):
    TRUST_SAFETY = "trust_safety"
    LEGAL = "legal"
    APPEALS = "appeals"


# The role mailboxes and the queue each feeds (the mail bridge; quarantine release).
MAILBOX_TEAMS: dict[str, Team] = {"ca": Team.TRUST_SAFETY, "appeals": Team.APPEALS}


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
    event_scope: bool = False


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


# --- Abuse of the reporting channels -------------------------------------------------------
# Policy: "if inappropriate reporting behavior continues after we have issued a warning, we may
# entirely refuse to communicate with the reporting party. The lock-out period will be
# determined based on the seriousness, frequency, number and - if reasonably apparent -
# presumed intent (e.g. apparent bad faith) of the abusive reports." DSA Art. 23 adds the
# proportion of a person's notices that were unfounded, and a reasonable, bounded period.


class AbuseCategory(StrEnum):
    TERMS_OF_USE = "terms_of_use"
    FRIENDLY_SPACE = "friendly_space"
    THREAT_OR_HARASSMENT_OF_STAFF = "threat_or_harassment_of_staff"
    PREFERENTIAL_TREATMENT = "preferential_treatment"


class Seriousness(StrEnum):
    MINOR = "minor"
    SERIOUS = "serious"
    SEVERE = "severe"


class Intent(StrEnum):
    GOOD_FAITH = "good_faith"
    UNCLEAR = "unclear"
    BAD_FAITH = "bad_faith"


LOCKOUT_MAX_DAYS = 365
LOCKOUT_BASE_DAYS = {Seriousness.MINOR: 7, Seriousness.SERIOUS: 30, Seriousness.SEVERE: 90}
LOCKOUT_INTENT_DAYS = {Intent.GOOD_FAITH: 0, Intent.UNCLEAR: 14, Intent.BAD_FAITH: 60}
DAYS_PER_EXTRA_MARK = 7  # each mark after the first since the warning
MAX_DAYS_FOR_MARKS = 60
DAYS_PER_EXTRA_RECENT_MARK = 5  # each mark after the first within FREQUENCY_WINDOW
MAX_DAYS_FOR_FREQUENCY = 45
FREQUENCY_WINDOW = timedelta(days=30)
DAYS_FOR_ALL_MARKED = 60  # scaled by the proportion of the person's submissions marked
REPEAT_GROWTH = 0.5  # each earlier lockout adds half again


@dataclass(frozen=True)
class LockoutFactors:
    seriousness: Seriousness
    marks_since_warning: int
    marks_last_30_days: int
    proportion_marked: float
    intent: Intent
    previous_lockouts: int = 0


@dataclass(frozen=True)
class FactorContribution:
    name: str
    value: str
    days: int


@dataclass(frozen=True)
class LockoutProposal:
    days: int
    contributions: tuple[FactorContribution, ...]


def propose_lockout_days(factors: LockoutFactors) -> LockoutProposal:
    """The lockout the rule proposes, with what each factor added.

    Monotone: more serious, more marks, more frequent, a larger share marked, worse intent or
    more earlier lockouts never give a shorter lockout. Bounded by LOCKOUT_MAX_DAYS. The
    contributions always add up to the total, so staff can read exactly why.
    """
    seriousness = Seriousness(factors.seriousness)
    intent = Intent(factors.intent)
    marks = max(1, factors.marks_since_warning)
    recent = max(1, factors.marks_last_30_days)
    proportion = min(1.0, max(0.0, factors.proportion_marked))
    previous = max(0, factors.previous_lockouts)

    parts = [
        FactorContribution(
            "seriousness of the latest mark", seriousness.value, LOCKOUT_BASE_DAYS[seriousness]
        ),
        FactorContribution(
            "marks since the warning",
            str(marks),
            min(MAX_DAYS_FOR_MARKS, DAYS_PER_EXTRA_MARK * (marks - 1)),
        ),
        FactorContribution(
            "marks in the last 30 days",
            str(recent),
            min(MAX_DAYS_FOR_FREQUENCY, DAYS_PER_EXTRA_RECENT_MARK * (recent - 1)),
        ),
        FactorContribution(
            "share of their submissions marked",
            f"{proportion:.0%}",
            round(DAYS_FOR_ALL_MARKED * proportion),
        ),
        FactorContribution("presumed intent", intent.value, LOCKOUT_INTENT_DAYS[intent]),
    ]
    subtotal = sum(part.days for part in parts)
    grown = round(subtotal * (1 + REPEAT_GROWTH * previous))
    parts.append(FactorContribution("earlier lockouts", str(previous), grown - subtotal))
    if grown > LOCKOUT_MAX_DAYS:
        parts.append(
            FactorContribution(
                "bound of one year", f"{LOCKOUT_MAX_DAYS} days", LOCKOUT_MAX_DAYS - grown
            )
        )
    total = sum(part.days for part in parts)
    return LockoutProposal(days=total, contributions=tuple(parts))


# Channels the law keeps open during a lockout. Matching is deliberately generous: a false
# positive only moves a quarantined message to the top of the quarantine view.
_LEGALLY_OPEN = (
    (
        "child protection",
        re.compile(
            r"\b(child (protection|abuse|safety|exploitation)|minors?|under-?age|grooming|csam|"
            r"child porn\w*|ncmec|paedophil\w*|pedophil\w*)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "court order",
        re.compile(
            r"\b(court orders?|subpoenas?|injunctions?|search warrants?|judgment|judgement)\b",
            re.IGNORECASE,
        ),
    ),
)


def legally_open_channel(*texts: str | None) -> str | None:
    """ "child protection" or "court order" if a message from a locked-out reporter is one."""
    joined = "\n".join(text for text in texts if text)
    for reason, pattern in _LEGALLY_OPEN:
        if pattern.search(joined):
            return reason
    return None
