"""Who may see which case. Every staff query for cases goes through :func:`visible_cases`.

Kept in one place, with no view-by-view checks, so that a new page cannot forget a rule (the
rules of who sees what are in portal.policy.permissions and portal.policy.routing; this module
turns them into SQL):
- admins see every case, except child protection, which only Trust & Safety sees;
- Trust & Safety see their team's queue and the appeals queue;
- Legal see Legal's queue;
- appeal reviewers see the appeals queue; of a case under appeal they see only the decision
  (on the appeal's review page, portal.staff.appeals), and its whole file only when Trust &
  Safety shared it with them (``Case.shared_with_reviewers``);
- a confidential case is seen only by its assignee and by admins.

Mail on no case (what the bridge could not file) is seen by whoever would see the inquiry it
would have opened: the staff of its mailbox's queue (:func:`unfiled_visibility`). A person
outside (a reporter) is shown only to staff who may see one of their cases
(:func:`get_visible_reporter`).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, exists, false, or_, select, true
from sqlalchemy.orm import Session, aliased

from portal.models import Case, CaseParty, Message, Reporter, StaffUser
from portal.models.message import Direction
from portal.policy.actions import ActionType
from portal.policy.permissions import (
    reads_shared_files,
    sees_child_protection,
    sees_every_confidential_case,
    sees_every_queue,
)
from portal.policy.routing import MAILBOX_TEAMS, Team, teams_for_roles


def visibility(user: StaffUser) -> ColumnElement[bool]:
    """A WHERE clause true for exactly the cases ``user`` may see."""
    if not user.is_active:
        return false()
    teams = visible_teams(user)  # one role-to-queue mapping for the navigation and the rule

    if sees_every_queue(user.roles):
        by_role: ColumnElement[bool] = true()
    else:
        conditions: list[ColumnElement[bool]] = [Case.team.in_(teams)] if teams else []
        if reads_shared_files(user.roles):
            appeal = aliased(Case)
            conditions.append(
                and_(
                    Case.shared_with_reviewers.is_(True),
                    Case.id.in_(
                        select(appeal.appeal_of_id).where(
                            appeal.team == Team.APPEALS, appeal.appeal_of_id.is_not(None)
                        )
                    ),
                )
            )
        by_role = or_(*conditions) if conditions else false()

    child_protection_ok: ColumnElement[bool] = (
        true()
        if sees_child_protection(user.roles)
        else or_(Case.action.is_(None), Case.action != ActionType.CHILD_PROTECTION)
    )
    confidential_ok: ColumnElement[bool] = (
        true()
        if sees_every_confidential_case(user.roles)
        else or_(Case.confidential.is_(False), Case.assignee_id == user.id)
    )
    return and_(by_role, child_protection_ok, confidential_ok)


def visible_cases(user: StaffUser) -> Select[tuple[Case]]:
    return select(Case).where(visibility(user))


def get_visible_case(session: Session, user: StaffUser, case_id: int) -> Case | None:
    """The case if ``user`` may see it; None whether it is missing or hidden (same 404)."""
    return session.scalar(visible_cases(user).where(Case.id == case_id))


def get_visible_reporter(session: Session, user: StaffUser, reporter_id: int) -> Reporter | None:
    """The reporter if ``user`` may see one of their cases (as requester or as a party, by
    canonical address), else None: the same 404 whether they are missing or hidden. Their
    identity is then nothing the user could not read on that case already."""
    reporter = session.get(Reporter, reporter_id)
    if reporter is None:
        return None
    parties = select(CaseParty.case_id).where(CaseParty.address == reporter.canonical_email)
    theirs = or_(Case.requester_id == reporter.id, Case.id.in_(parties))
    seen = session.scalar(select(exists(select(Case.id).where(theirs, visibility(user)))))
    return reporter if seen else None


def visible_teams(user: StaffUser) -> list[str]:
    """The queues a user works in (portal.policy.routing.teams_for_roles): the inbox's
    navigation, and the team part of :func:`visibility` (whose other rules then narrow it)."""
    return list(teams_for_roles(user.roles))


def visible_mailboxes(user: StaffUser) -> list[str]:
    """The role mailboxes (``ca``, ``appeals``) whose unfiled mail ``user`` may read: those
    feeding a queue they work in, where such mail would have opened its inquiry."""
    if not user.is_active:
        return []
    teams = visible_teams(user)
    return [name for name, team in MAILBOX_TEAMS.items() if team in teams]


def unfiled_visibility(user: StaffUser) -> ColumnElement[bool]:
    """A WHERE clause true for exactly the unfiled messages ``user`` may read: inbound mail on
    no case and not in quarantine (which has its own page and rule), from one of
    :func:`visible_mailboxes`. An unfiled message is unread: nobody can know yet whether it is
    a child protection report or about a confidential case, so it goes no wider than the
    inquiry it would have opened (never action-classified, never confidential)."""
    mailboxes = visible_mailboxes(user)
    if not mailboxes:
        return false()
    return and_(
        Message.case_id.is_(None),
        Message.quarantined.is_(False),
        Message.direction == Direction.INBOUND,
        Message.mailbox.in_(mailboxes),
    )
