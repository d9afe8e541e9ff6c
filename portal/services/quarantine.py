"""Quarantine: mail from a locked-out reporter is kept (it is evidence) but not queued.

A quarantined message may belong to a case already (a reply into an existing thread) or to
none (new mail). Releasing it puts it on its case's timeline, or opens an inquiry for it in
the queue of the mailbox it came to.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import Session

from portal.access import visibility
from portal.models import Case, Message, StaffUser
from portal.models.base import utcnow
from portal.policy.routing import team_for_mailbox
from portal.services import audit
from portal.services.cases import open_mail_case


def _waiting_for(user: StaffUser) -> ColumnElement[bool]:
    """Quarantined mail ``user`` may read: new mail (on no case yet), or mail on a case they
    may see (portal.access). Releasing clears ``quarantined``, so that flag alone says
    "waiting", which the partial index on it answers."""
    return and_(
        Message.quarantined == true(),
        or_(
            Message.case_id.is_(None), Message.case_id.in_(select(Case.id).where(visibility(user)))
        ),
    )


def quarantined(session: Session, user: StaffUser, limit: int = 200) -> list[Message]:
    """Messages waiting in quarantine that ``user`` may read, urgent ones first."""
    return list(
        session.scalars(
            select(Message)
            .where(_waiting_for(user))
            .order_by(Message.urgent.desc(), Message.id)
            .limit(limit)
        )
    )


def urgent_waiting(session: Session, user: StaffUser) -> int:
    """Urgent messages in quarantine: shown to Trust & Safety on every inbox page."""
    return (
        session.scalar(
            select(func.count(Message.id)).where(_waiting_for(user), Message.urgent == true())
        )
        or 0
    )


def release(
    session: Session, staff: StaffUser, message: Message, now: datetime | None = None
) -> int:
    """Release a message into its queue; returns the id of the case it is now on."""
    now = now or utcnow()
    if not message.quarantined:
        raise ValueError("This message is not in quarantine.")
    if message.case_id is None:
        case = open_mail_case(
            session,
            team=team_for_mailbox(message.mailbox),
            mailbox=message.mailbox or "web",
            sender=message.sender,
            sender_name=message.sender_name,
            subject=message.subject,
            actor=audit.staff_actor(staff),
            now=now,
        )
        message.case_id = case.id
    message.quarantined = False
    message.quarantine_released_at = now
    audit.record(
        session,
        actor=audit.staff_actor(staff),
        action="quarantine.released",
        case_id=message.case_id,
        details={"message_id": message.id},
        now=now,
    )
    return message.case_id
