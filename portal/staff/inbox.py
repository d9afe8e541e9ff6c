"""The inbox at /staff/: queues, filters, search, keyset pages."""

from __future__ import annotations

from flask import render_template, request
from flask_login import current_user

from portal.access import visible_teams
from portal.extensions import db
from portal.models import StaffUser
from portal.models.base import utcnow
from portal.policy.actions import RULES, CaseStatus
from portal.policy.permissions import may_handle_abuse
from portal.search import SEARCH_HIT_LIMIT, hits_capped
from portal.services import quarantine, unfiled
from portal.services.inbox import InboxFilters, inbox_page, time_left
from portal.staff import bp


def _filters() -> InboxFilters:
    args = request.args
    team = args.get("team") or None
    if team and team not in visible_teams(current_user):
        team = None
    status = args.get("status") or None
    if status and status != "all" and status not in set(CaseStatus):
        status = None
    action = args.get("action") or None
    if action and action not in RULES:
        action = None
    return InboxFilters(
        team=team,
        status=status,
        action=action,
        assignee=args.get("assignee") or None,
        overdue=args.get("overdue") == "1",
        query=(args.get("q") or "").strip()[:200] or None,
    )


@bp.get("/")
def inbox() -> str:
    filters = _filters()
    now = utcnow()
    page = inbox_page(db.session, current_user, filters, request.args.get("after"), now=now)
    staff = db.session.scalars(
        db.select(StaffUser).where(StaffUser.active.is_(True)).order_by(StaffUser.email)
    ).all()
    return render_template(
        "staff/inbox.html",
        page=page,
        filters=filters,
        teams=visible_teams(current_user),
        statuses=list(CaseStatus),
        rules=RULES,
        staff=staff,
        clock=lambda case: time_left(case, now),
        args={k: v for k, v in request.args.items() if k != "after"},
        search_capped=bool(filters.query) and hits_capped(db.session, filters.query or ""),
        search_limit=SEARCH_HIT_LIMIT,
        unfiled_waiting=unfiled.waiting(db.session, current_user),
        urgent_quarantined=quarantine.urgent_waiting(db.session, current_user)
        if may_handle_abuse(current_user.roles)
        else 0,
    )
