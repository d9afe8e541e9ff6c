"""Abuse of the reporting channels: what staff mark, and how long a lockout lasts.

Policy: "if inappropriate reporting behavior continues after we have issued a warning, we may
entirely refuse to communicate with the reporting party. The lock-out period will be
determined based on the seriousness, frequency, number and - if reasonably apparent -
presumed intent (e.g. apparent bad faith) of the abusive reports." DSA Art. 23 adds the
proportion of a person's notices that were unfounded, and a reasonable, bounded period.

The order is the policy's: a first mark proposes a warning; a mark after a warning proposes a
lockout of :func:`propose_lockout_days`, which staff confirm or override with a written
reason. During a lockout the channels the law keeps open stay open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from portal.policy.actions import ActionType


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


# As staff choose them when they mark a case (the order is the form's).
CATEGORY_LABELS: dict[AbuseCategory, str] = {
    AbuseCategory.TERMS_OF_USE: "breaches the Terms of Use",
    AbuseCategory.FRIENDLY_SPACE: "breaches the Friendly Space Policy",
    AbuseCategory.THREAT_OR_HARASSMENT_OF_STAFF: "threatens or harasses staff",
    AbuseCategory.PREFERENTIAL_TREATMENT: "demands preferential treatment",
}
INTENT_LABELS: dict[Intent, str] = {
    Intent.GOOD_FAITH: "good faith",
    Intent.UNCLEAR: "unclear",
    Intent.BAD_FAITH: "bad faith",
}


class Step(StrEnum):
    """What the rules propose after a mark: a warning first; after a warning, a lockout."""

    WARNING = "warning"
    LOCKOUT = "lockout"


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


def why_not_override(override_days: int, reason: str | None) -> str | None:
    """Staff may set another length than the proposed one, with a written reason, within the
    same bound as the rule; None when the override may stand."""
    if not (reason or "").strip():
        return "Give a written reason for a length other than the proposed one."
    if not 1 <= override_days <= LOCKOUT_MAX_DAYS:
        return f"A lockout lasts between 1 and {LOCKOUT_MAX_DAYS} days."
    return None


def in_force(
    starts_at: datetime, ends_at: datetime, lifted_at: datetime | None, at: datetime
) -> bool:
    """A lockout is in force from its start until (not at) its end, unless lifted."""
    return lifted_at is None and starts_at <= at < ends_at


# Worked examples for the public page on abuse, computed by the rule itself so that the page
# can never drift from it.
LOCKOUT_EXAMPLES: tuple[tuple[str, LockoutFactors], ...] = (
    (
        "A second minor breach of the Friendly Space Policy after a warning, in good faith, "
        "one of ten requests marked",
        LockoutFactors(Seriousness.MINOR, 1, 1, 0.1, Intent.GOOD_FAITH),
    ),
    (
        "Three serious marks since the warning, all in the last month, half of the requests "
        "marked, intent unclear",
        LockoutFactors(Seriousness.SERIOUS, 3, 3, 0.5, Intent.UNCLEAR),
    ),
    (
        "Threats against staff after a warning, in apparent bad faith, every request marked, "
        "after an earlier lockout",
        LockoutFactors(Seriousness.SEVERE, 2, 2, 1.0, Intent.BAD_FAITH, previous_lockouts=1),
    ),
)


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


# A locked-out reporter may still file these on the web form: the report goes in, urgent.
OPEN_DURING_LOCKOUT: frozenset[ActionType] = frozenset({ActionType.CHILD_PROTECTION})


def open_during_lockout(action: str) -> bool:
    """Whether a request for ``action`` is taken from a reporter who is locked out."""
    return action in OPEN_DURING_LOCKOUT


def legally_open_channel(*texts: str | None) -> str | None:
    """ "child protection" or "court order" if a message from a locked-out reporter is one."""
    joined = "\n".join(text for text in texts if text)
    for reason, pattern in _LEGALLY_OPEN:
        if pattern.search(joined):
            return reason
    return None
