"""What staff do to a case. Each function changes one thing and audits it, before and after.

The caller commits. Functions take the acting staff member and return nothing the view has to
interpret: a refusal is a :class:`CaseActionError` with a message fit to show.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.addresses import canonical_address
from portal.models import Case, CaseParty, Message, StaffUser
from portal.models.base import utcnow
from portal.models.message import Channel, Direction
from portal.policy.actions import (
    DECISIONS,
    ActionType,
    CaseStatus,
    Decision,
    Priority,
    due_at,
    rule_for,
)
from portal.policy.routing import Team
from portal.services import audit


class CaseActionError(ValueError):
    """A change staff asked for that the rules do not allow."""


def record_change(
    session: Session,
    staff: StaffUser,
    case: Case,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    now: datetime,
) -> None:
    """Touch the case and audit one change by staff, with what it was and what it is now."""
    case.updated_at = now
    audit.record(
        session,
        actor=audit.staff_actor(staff),
        action=action,
        case_id=case.id,
        details={"before": before, "after": after},
        now=now,
    )


def assign(
    session: Session,
    staff: StaffUser,
    case: Case,
    assignee: StaffUser | None,
    now: datetime | None = None,
) -> None:
    now = now or utcnow()
    if assignee is not None and not assignee.active:
        raise CaseActionError("That staff account is disabled: cases cannot go to it.")
    before = case.assignee_id
    case.assignee_id = assignee.id if assignee else None
    if case.status == CaseStatus.NEW and assignee is not None:
        case.status = CaseStatus.OPEN
    record_change(
        session,
        staff,
        case,
        "case.assigned",
        {"assignee_id": before},
        {"assignee_id": case.assignee_id},
        now,
    )


def change_status(
    session: Session, staff: StaffUser, case: Case, status: str, now: datetime | None = None
) -> None:
    now = now or utcnow()
    new = CaseStatus(status)
    if new is CaseStatus.DECIDED and not case.decision:
        raise CaseActionError("Record the decision first: the status follows from it.")
    before = case.status
    case.status = new
    record_change(
        session, staff, case, "case.status_changed", {"status": before}, {"status": new.value}, now
    )


def classify(
    session: Session,
    staff: StaffUser,
    case: Case,
    *,
    action: str | None,
    team: str,
    confidential: bool,
    now: datetime | None = None,
) -> None:
    """Change action type, team or confidentiality; a new action restarts its policy clock."""
    now = now or utcnow()
    before = {"action": case.action, "team": case.team, "confidential": case.confidential}
    new_action = ActionType(action) if action else None
    if new_action is not None and new_action.value != case.action:
        rule = rule_for(new_action)
        case.due_at = due_at(rule.action, now)
        case.priority = rule.priority
    elif new_action is None:
        case.priority = Priority.NORMAL
    case.action = new_action.value if new_action else None
    case.team = Team(team).value
    case.confidential = confidential
    after = {"action": case.action, "team": case.team, "confidential": case.confidential}
    if after != before:
        record_change(session, staff, case, "case.classified", before, after, now)


def add_party(
    session: Session,
    staff: StaffUser,
    case: Case,
    *,
    address: str,
    role: str,
    now: datetime | None = None,
) -> None:
    now = now or utcnow()
    canonical = canonical_address(address)
    exists = session.scalar(
        select(CaseParty).where(
            CaseParty.case_id == case.id, CaseParty.address == canonical, CaseParty.role == role
        )
    )
    if exists:
        raise CaseActionError("This address is already a party to the case in that role.")
    party = CaseParty(
        case_id=case.id, address=canonical, role=role, added_by=audit.staff_actor(staff)
    )
    session.add(party)
    session.flush()
    # The audit trail names the party row, never the address itself.
    record_change(
        session, staff, case, "case.party_added", {}, {"party_id": party.id, "role": role}, now
    )


def record_decision(
    session: Session,
    staff: StaffUser,
    case: Case,
    *,
    decision: str,
    details: str,
    scope_location: str | None = None,
    scope_project: str | None = None,
    scope_until: date | None = None,
    part_of_global_ban: bool = False,
    irrevocable: bool = False,
    now: datetime | None = None,
) -> None:
    """Record the decision. For a granted event ban, also its scope and the two facts the
    appeal rules need (portal.policy.appeals): part of a global ban, and irrevocable."""
    now = now or utcnow()
    if decision not in DECISIONS:
        raise CaseActionError("A decision is granted or declined.")
    before = {"decision": case.decision, "status": case.status}
    case.decision = decision
    case.decision_details = details
    case.decided_at = now
    case.decided_by_id = staff.id
    case.status = CaseStatus.DECIDED
    event_ban = case.action == ActionType.EVENT_BAN and decision == Decision.GRANTED
    if event_ban:
        case.scope_location = scope_location or case.scope_location
        case.scope_project = scope_project or case.scope_project
        case.scope_until = scope_until or case.scope_until
    case.part_of_global_ban = event_ban and part_of_global_ban
    case.irrevocable = event_ban and irrevocable
    record_change(
        session,
        staff,
        case,
        "case.decided",
        before,
        {
            "decision": decision,
            "status": case.status,
            "scope_until": str(case.scope_until or ""),
            "part_of_global_ban": case.part_of_global_ban,
            "irrevocable": case.irrevocable,
        },
        now,
    )


def record_modification(
    session: Session,
    staff: StaffUser,
    case: Case,
    *,
    details: str,
    substantial: bool,
    now: datetime | None = None,
) -> None:
    """A change to a decision. Only a substantial, atypical one restarts the appeal window
    (policy: "the extension of a suspension by several months does not")."""
    now = now or utcnow()
    if not case.decision:
        raise CaseActionError("There is no decision to modify yet.")
    before = {"modified_at": case.modified_at.isoformat() if case.modified_at else None}
    if substantial:
        case.modified_at = now
    add_note(
        session,
        staff,
        case,
        f"Decision modified ({'substantial' if substantial else 'not substantial'}): {details}",
        now=now,
    )
    record_change(
        session,
        staff,
        case,
        "case.decision_modified",
        before,
        {
            "substantial": substantial,
            "modified_at": case.modified_at.isoformat() if case.modified_at else None,
        },
        now,
    )


def add_note(
    session: Session, staff: StaffUser, case: Case, body: str, now: datetime | None = None
) -> Message:
    now = now or utcnow()
    note = Message(
        case_id=case.id,
        direction=Direction.NOTE,
        channel=Channel.WEB,
        sender=staff.email,
        sender_name=staff.display_name,
        body_text=body,
        sent_at=now,
        created_at=now,
        author_staff_id=staff.id,
    )
    session.add(note)
    session.flush()
    audit.record(
        session,
        actor=audit.staff_actor(staff),
        action="case.note_added",
        case_id=case.id,
        details={"message_id": note.id},
        now=now,
    )
    return note
