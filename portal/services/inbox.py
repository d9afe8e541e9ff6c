"""The staff inbox: queue counts and a page of cases in urgency order, with keyset paging.

Order: urgent before normal, then the earliest due time (cases with no clock last), then
the oldest id. The page is read one priority at a time (``priority = ?`` ordered by
``queue_due_at, id``), which ``ix_cases_queue_order`` (per team) and ``ix_cases_order`` (across
teams) hold in exactly that order: a page is an index walk of fifty rows, however many cases
there are, on SQLite and PostgreSQL alike. The cursor is the last row's sort key, never an
offset: page 2,000 costs what page 1 costs.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from portal.access import visibility, visible_teams
from portal.models import Case, StaffUser
from portal.models.base import utcnow
from portal.policy.actions import OPEN_STATUSES, Priority
from portal.search import case_reference_query, matching_case_ids

PAGE_SIZE = 50


@dataclass(frozen=True)
class InboxFilters:
    team: str | None = None
    status: str | None = None  # None: every open status; "all": everything
    action: str | None = None
    assignee: str | None = None  # a staff id, "me", or "none"
    overdue: bool = False
    query: str | None = None


@dataclass
class InboxPage:
    cases: list[Case]
    next_cursor: str | None
    counts: dict[str, int] = field(default_factory=dict)


def _encode_cursor(case: Case) -> str:
    payload = json.dumps([case.priority, case.queue_due_at.isoformat(), case.id])
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, datetime, int] | None:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        priority, due, case_id = json.loads(base64.urlsafe_b64decode(padded))
        return str(priority), datetime.fromisoformat(due), int(case_id)
    except (ValueError, TypeError, binascii.Error):
        return None


# Most urgent first. Every priority is listed: a case never falls out of the inbox.
PRIORITY_ORDER = (Priority.URGENT, Priority.NORMAL)


def _after(due: datetime, case_id: int) -> ColumnElement[bool]:
    """Rows after (due, case_id) within one priority, in (queue_due_at, id) order."""
    return or_(Case.queue_due_at > due, and_(Case.queue_due_at == due, Case.id > case_id))


def _after_key(priority: str, due: datetime, case_id: int) -> ColumnElement[bool]:
    """Rows after the cursor in (priority DESC, queue_due_at, id) order."""
    return or_(Case.priority < priority, and_(Case.priority == priority, _after(due, case_id)))


def _walk_priorities(
    session: Session,
    conditions: list[ColumnElement[bool]],
    cursor: tuple[str, datetime, int] | None,
    limit: int,
) -> list[Case]:
    """Up to ``limit`` cases in queue order, one index walk per priority."""
    priorities = list(PRIORITY_ORDER)
    if cursor is not None and cursor[0] in priorities:
        priorities = priorities[priorities.index(Priority(cursor[0])) :]
    rows: list[Case] = []
    for priority in priorities:
        query = select(Case).where(*conditions, Case.priority == priority)
        if cursor is not None and cursor[0] == priority:
            query = query.where(_after(cursor[1], cursor[2]))
        rows += session.scalars(
            query.order_by(Case.queue_due_at, Case.id).limit(limit - len(rows))
        ).all()
        if len(rows) >= limit:
            break
    return rows


def _conditions(
    session: Session, user: StaffUser, filters: InboxFilters, now: datetime
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [visibility(user)]
    if filters.team:
        conditions.append(Case.team == filters.team)
    if filters.status is None:
        conditions.append(Case.status.in_(OPEN_STATUSES))
    elif filters.status != "all":
        conditions.append(Case.status == filters.status)
    if filters.action:
        conditions.append(Case.action == filters.action)
    if filters.assignee == "me":
        conditions.append(Case.assignee_id == user.id)
    elif filters.assignee == "none":
        conditions.append(Case.assignee_id.is_(None))
    elif filters.assignee and filters.assignee.isdigit():
        conditions.append(Case.assignee_id == int(filters.assignee))
    if filters.overdue:
        conditions.append(Case.due_at < now)
    if filters.query:
        by_reference = case_reference_query(filters.query)
        if by_reference is not None:
            conditions.append(by_reference)
        else:
            matching = matching_case_ids(session, filters.query)
            conditions.append(Case.id.in_(matching) if matching is not None else Case.id < 0)
    return conditions


def queue_counts(session: Session, user: StaffUser, now: datetime | None = None) -> dict[str, int]:
    """Open cases per visible queue, plus how many of them are overdue (``<team>:overdue``)."""
    now = now or utcnow()
    teams = visible_teams(user)
    rows = session.execute(
        select(
            Case.team,
            func.count(Case.id),
            func.count(Case.id).filter(Case.due_at < now),
        )
        .where(visibility(user), Case.status.in_(OPEN_STATUSES), Case.team.in_(teams))
        .group_by(Case.team)
    ).all()
    counts = dict.fromkeys(teams, 0)
    for team, total, overdue in rows:
        counts[team] = total
        counts[f"{team}:overdue"] = overdue
    return counts


def inbox_page(
    session: Session,
    user: StaffUser,
    filters: InboxFilters,
    cursor: str | None = None,
    *,
    now: datetime | None = None,
    page_size: int = PAGE_SIZE,
) -> InboxPage:
    now = now or utcnow()
    conditions = _conditions(session, user, filters, now)
    decoded = _decode_cursor(cursor) if cursor else None
    if filters.query:
        # Search results are few next to the queue: sort them once, rather than running the
        # full-text match again for every priority.
        query = select(Case).where(*conditions)
        if decoded is not None:
            query = query.where(_after_key(*decoded))
        rows = list(
            session.scalars(
                query.order_by(Case.priority.desc(), Case.queue_due_at, Case.id).limit(
                    page_size + 1
                )
            )
        )
    else:
        rows = _walk_priorities(session, conditions, decoded, page_size + 1)
    more = len(rows) > page_size
    cases = rows[:page_size]
    return InboxPage(
        cases=cases,
        next_cursor=_encode_cursor(cases[-1]) if more and cases else None,
        counts=queue_counts(session, user, now),
    )


def time_left(case: Case, now: datetime) -> tuple[str, bool] | None:
    """("3 days left", False) or ("overdue by 5 hours", True); None when no clock runs."""
    if case.due_at is None or case.status not in OPEN_STATUSES:
        return None
    delta = case.due_at - now
    overdue = delta.total_seconds() < 0
    seconds = abs(int(delta.total_seconds()))
    if seconds >= 2 * 86400:
        amount = f"{seconds // 86400} days"
    elif seconds >= 7200:
        amount = f"{seconds // 3600} hours"
    elif seconds >= 120:
        amount = f"{seconds // 60} minutes"
    else:
        amount = "moments"
    return (f"overdue by {amount}", True) if overdue else (f"{amount} left", False)
