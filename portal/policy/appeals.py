"""Who may appeal which decision, until when, and who reviews it: the policy as plain Python.

The rules come from the Office Actions Policy ("Timeline of office actions": appeals within
6 months of a decision's first issuance or of its substantial, atypical modification, only by
the requester or the person investigated; "Foundation event ban": event bans that are part of a
global ban are not appealable, and one with no end date that is not irrevocable goes to
ca@; "DMCA compliance": a removal is challenged by counter-notice) and from the EU Digital
Services Act, Art. 20 (the six months run from the day the person was informed).

Nothing here knows Flask or the database: :func:`assess` takes the facts of a decision and
answers with a refusal or a route, so every boundary is tested in microseconds with a fixed
clock. Refusals are one sentence each, saying why and what the person can do instead.

The life of an appeal (:class:`AppealState`): filed and *pending* until the appellant follows
the confirmation link, which lives :data:`APPEAL_CONFIRM_HOURS`; then *open* in its reviewers'
queue, on a clock of :data:`APPEAL_CLOCK_DAYS`, until *decided*; or *refused* by the rules.
Who may decide it is in :mod:`portal.policy.permissions`.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

from portal.policy.actions import DECISIONS, ActionType, CaseKind, Decision
from portal.policy.roles import PartyRole
from portal.policy.routing import Team

APPEAL_WINDOW_MONTHS = 6
# The review committee's clock for an open appeal, and how long a confirmation link lives
# (defaults: PORTAL_APPEAL_CLOCK_DAYS and PORTAL_APPEAL_CONFIRM_HOURS may change them).
APPEAL_CLOCK_DAYS = 28
APPEAL_CONFIRM_HOURS = 48


class AppealState(StrEnum):
    PENDING = "pending"  # waiting for the link to be followed
    REFUSED = "refused"  # the rules said no; the person was told why by mail
    OPEN = "open"  # confirmed: in a reviewer's queue
    DECIDED = "decided"


class AppellantRole(StrEnum):
    """The only people the policy lets ask for review: two of the roles on a case."""

    REQUESTER = PartyRole.REQUESTER.value  # "an individual who requested the initial case"
    SUBJECT = PartyRole.SUBJECT.value  # "an individual under investigation"


class Refusal(StrEnum):
    NOT_DECIDED = "not_decided"
    APPEAL_OUTCOME = "appeal_outcome"
    DMCA_REMOVAL = "dmca_removal"
    PART_OF_GLOBAL_BAN = "part_of_global_ban"
    TOO_LATE = "too_late"
    ALREADY_REVIEWED = "already_reviewed"
    OPEN_APPEAL = "open_appeal"


class Route(StrEnum):
    """Who reviews an eligible appeal."""

    COMMITTEE = "committee"  # the Trust & Safety Case Review Committee (team appeals)
    TRUST_SAFETY = "trust_safety"  # event bans with no end date, child protection
    LEGAL = "legal"  # statutory, regulatory, employment or legal matters: eligibility first


ROUTE_TEAM: dict[Route, Team] = {
    Route.COMMITTEE: Team.APPEALS,
    Route.TRUST_SAFETY: Team.TRUST_SAFETY,
    Route.LEGAL: Team.LEGAL,
}
ROUTE_LABELS: dict[Route, str] = {
    Route.COMMITTEE: "the case review committee",
    Route.TRUST_SAFETY: "Trust & Safety",
    Route.LEGAL: "the Legal team",
}


def route_of(value: str | None) -> Route:
    """The route an appeal recorded; one filed before routes existed is the committee's."""
    return Route(value or Route.COMMITTEE)


class Outcome(StrEnum):
    RATIFIED = "ratified"  # the decision stands
    OVERTURNED = "overturned"  # the decision is overruled
    RECONSIDER = "reconsider"  # sent back to the team for further investigation


OUTCOME_LABELS: dict[Outcome, str] = {
    Outcome.RATIFIED: "Ratified: the decision stands",
    Outcome.OVERTURNED: "Overturned: the decision is overruled",
    Outcome.RECONSIDER: "Reconsider: sent back for further investigation",
}

# Each refusal is one sentence: why, and what the person can do instead. ``{deadline}`` is the
# last day of the appeal window, ``{legal}`` the Legal team's address.
REFUSALS: dict[Refusal, str] = {
    Refusal.NOT_DECIDED: (
        "This case has no decision yet, so there is nothing to appeal: you can appeal within "
        "six months of the day you are told of the decision."
    ),
    Refusal.APPEAL_OUTCOME: (
        "This reference is an appeal whose outcome is final, so it cannot itself be appealed: "
        "if you have new facts, you can send them as a new request."
    ),
    Refusal.DMCA_REMOVAL: (
        "A removal under the DMCA is not reviewed on appeal: to challenge it, send a DMCA "
        "counter-notice to the Legal team at {legal}."
    ),
    Refusal.PART_OF_GLOBAL_BAN: (
        "This event ban is part of a global ban, and the policy does not let such event bans "
        "be appealed on their own: you can appeal the global ban decision instead."
    ),
    Refusal.TOO_LATE: (
        "The six months for appealing this decision ended on {deadline}, so it can no longer "
        "be appealed: if the decision is changed substantially, you can appeal the change."
    ),
    Refusal.ALREADY_REVIEWED: (
        "This decision has already been reviewed on appeal and that review is final: if the "
        "decision is changed substantially, you can appeal the change."
    ),
    Refusal.OPEN_APPEAL: (
        "An appeal of this decision is already under review and only one can be open at a "
        "time: you can appeal once that review has ended, if you are still within six months."
    ),
}

ROUTE_REASONS: dict[str, str] = {
    "legal": (
        "Statutory, regulatory, employment and legal matters are outside the case review "
        "committee's remit: the Legal team first decides whether this appeal is eligible."
    ),
    "open_event_ban": (
        "An event ban with no end date that is not irrevocable is reviewed by Trust & Safety "
        "(policy: such appeals go to ca@), not by the committee."
    ),
    "child_protection": (
        "Child protection cases are seen only by Trust & Safety, so Trust & Safety reviews "
        "this appeal."
    ),
}


@dataclass(frozen=True)
class DecisionFacts:
    """What the rules need to know about the decision under appeal."""

    kind: str
    action: str | None
    team: str
    decision: str | None
    #: the day the parties were informed of the decision (decided_at)
    notified_at: datetime | None
    #: the last *substantial* modification (Case.modified_at); others do not count
    modified_at: datetime | None = None
    part_of_global_ban: bool = False
    irrevocable: bool = False
    has_end_date: bool = False


@dataclass(frozen=True)
class Assessment:
    """Either a refusal or a route; ``deadline`` is the last day of the window when known."""

    refusal: Refusal | None = None
    route: Route | None = None
    route_reason: str | None = None
    deadline: date | None = None

    @property
    def eligible(self) -> bool:
        return self.refusal is None

    def message(self, *, legal_address: str) -> str | None:
        """The refusal as the sentence the person reads, or None when eligible."""
        if self.refusal is None:
            return None
        deadline = format_day(self.deadline) if self.deadline else "an earlier date"
        return REFUSALS[self.refusal].format(deadline=deadline, legal=legal_address)


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months, clamped to the end of a shorter month.

    31 August + 6 months is 28 February (29 in a leap year), never 3 March.
    """
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def window_start(notified_at: datetime, modified_at: datetime | None) -> datetime:
    """The decision, or its last substantial modification if that came later."""
    if modified_at is not None and modified_at > notified_at:
        return modified_at
    return notified_at


def appeal_deadline(
    notified_at: datetime, modified_at: datetime | None = None, months: int = APPEAL_WINDOW_MONTHS
) -> date:
    """The last day (UTC, inclusive) on which an appeal may be filed.

    A period in months ends at the end of the day of the last month with the same date as the
    day it started from, or of that month's last day when it has none: the EU rule for time
    limits (Regulation 1182/71, Art. 3(2)(c)), which the DSA's six months follow.
    """
    start = window_start(notified_at, modified_at).astimezone(UTC).date()
    return add_months(start, months)


def within_window(filed_at: datetime, deadline: date) -> bool:
    return filed_at.astimezone(UTC).date() <= deadline


def format_day(day: date) -> str:
    return f"{day.day} {day.strftime('%B %Y')}"


def is_dmca_removal(facts: DecisionFacts) -> bool:
    dmca = facts.action == ActionType.DMCA or facts.kind == CaseKind.DMCA_NOTICE
    return dmca and facts.decision == Decision.GRANTED


def route_for(facts: DecisionFacts) -> tuple[Route, str | None]:
    """Who reviews an eligible appeal, and why when it is not the committee."""
    if facts.team == Team.LEGAL or facts.kind in (
        CaseKind.DMCA_NOTICE,
        CaseKind.DMCA_COUNTER_NOTICE,
    ):
        return Route.LEGAL, ROUTE_REASONS["legal"]
    if facts.action == ActionType.CHILD_PROTECTION:
        return Route.TRUST_SAFETY, ROUTE_REASONS["child_protection"]
    if (
        facts.action == ActionType.EVENT_BAN
        and facts.decision == Decision.GRANTED
        and not facts.has_end_date
        and not facts.irrevocable
    ):
        return Route.TRUST_SAFETY, ROUTE_REASONS["open_event_ban"]
    return Route.COMMITTEE, None


def assess(
    facts: DecisionFacts,
    *,
    filed_at: datetime,
    open_appeal: bool = False,
    already_reviewed: bool = False,
) -> Assessment:
    """Whether an appeal filed at ``filed_at`` may be reviewed, and by whom.

    ``open_appeal``: another appeal of this decision is under review; ``already_reviewed``: an
    appeal of this very decision (not an earlier one it replaced) has been decided.
    """
    if facts.kind == CaseKind.APPEAL:
        return Assessment(Refusal.APPEAL_OUTCOME)
    if facts.decision not in DECISIONS or facts.notified_at is None:
        return Assessment(Refusal.NOT_DECIDED)
    if is_dmca_removal(facts):
        return Assessment(Refusal.DMCA_REMOVAL)
    granted_event_ban = facts.action == ActionType.EVENT_BAN and facts.decision == Decision.GRANTED
    if granted_event_ban and facts.part_of_global_ban:
        return Assessment(Refusal.PART_OF_GLOBAL_BAN)
    deadline = appeal_deadline(facts.notified_at, facts.modified_at)
    if not within_window(filed_at, deadline):
        return Assessment(Refusal.TOO_LATE, deadline=deadline)
    if already_reviewed:
        return Assessment(Refusal.ALREADY_REVIEWED, deadline=deadline)
    if open_appeal:
        return Assessment(Refusal.OPEN_APPEAL, deadline=deadline)
    route, reason = route_for(facts)
    return Assessment(route=route, route_reason=reason, deadline=deadline)
