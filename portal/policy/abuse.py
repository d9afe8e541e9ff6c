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
from datetime import timedelta
from enum import StrEnum


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
