"""Unfiled mail: what the mail bridge kept but could not put on any case.

The bridge stores every message before it files it; when filing one fails for a reason of ours
(a bug tripped by an odd message, a value the database refuses), the message is kept with no
case and a flag saying why (``mailbridge.ingest``), and the rest of the batch goes on. Here
staff find it: listed to those who would see the inquiry it would have opened
(``portal.access.unfiled_visibility``), its raw message downloadable, and filed by hand as a
new inquiry in its mailbox's queue. Quarantined mail on no case is another matter, with its
own page (``portal.services.quarantine``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal.access import unfiled_visibility
from portal.models import Message, StaffUser
from portal.models.base import utcnow
from portal.policy.routing import MAILBOX_TEAMS
from portal.services import audit
from portal.services.cases import open_mail_case


class UnfiledError(ValueError):
    """The message is no longer unfiled (filed meanwhile by someone else), or is not ours."""


def unfiled(session: Session, user: StaffUser, limit: int = 200) -> list[Message]:
    """Unfiled messages ``user`` may read, oldest first: the longest wait is read first."""
    return list(
        session.scalars(
            select(Message).where(unfiled_visibility(user)).order_by(Message.id).limit(limit)
        )
    )


def waiting(session: Session, user: StaffUser) -> int:
    """How many unfiled messages ``user`` may read: shown on the inbox."""
    return session.scalar(select(func.count(Message.id)).where(unfiled_visibility(user))) or 0


def get_unfiled(session: Session, user: StaffUser, message_id: int) -> Message | None:
    """The message if it is unfiled and ``user`` may read it; None whether it is missing,
    filed, quarantined or hidden (the same 404)."""
    return session.scalar(select(Message).where(unfiled_visibility(user), Message.id == message_id))


def file_as_inquiry(
    session: Session, staff: StaffUser, message: Message, now: datetime | None = None
) -> int:
    """Open an inquiry for ``message`` in its mailbox's queue; returns the new case's id.

    The message is claimed with a conditional UPDATE (still on no case), so that two staff
    filing it at once open one case between them: the second gets :class:`UnfiledError`, and
    its case goes with its rollback.
    """
    now = now or utcnow()
    team = MAILBOX_TEAMS.get(message.mailbox or "")
    if team is None or message.case_id is not None:
        raise UnfiledError("This message is no longer waiting to be filed.")
    case = open_mail_case(
        session,
        team=team,
        mailbox=message.mailbox or "",
        sender=message.sender,
        sender_name=message.sender_name,
        subject=message.subject,
        actor=audit.staff_actor(staff),
        now=now,
    )
    claimed = session.execute(
        update(Message)
        .where(Message.id == message.id, Message.case_id.is_(None))
        .values(case_id=case.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise UnfiledError("Someone else has filed this message meanwhile.")
    session.refresh(message)
    audit.record(
        session,
        actor=audit.staff_actor(staff),
        action="unfiled.filed",
        case_id=case.id,
        details={"message_id": message.id},
        now=now,
    )
    return case.id
