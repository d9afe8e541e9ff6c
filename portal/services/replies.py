"""Staff replies: threaded to the message answered, sent from the team's role address."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal.config import Settings
from portal.models import CannedResponse, Case, Message, OutboundMail, ReplyPresence, StaffUser
from portal.models.base import utcnow
from portal.models.message import Direction
from portal.policy.mail import MailPurpose
from portal.services import audit
from portal.services.outbound import queue_mail, thread_under

_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|fwd?)\s*:\s*)+", re.IGNORECASE)


class ReplyError(ValueError):
    """A reply that cannot be sent, with a message for the staff member."""


def reply_subject(case: Case, answered: Message | None) -> str:
    """``Re: [OA-2026-000123] <original subject>``, with no pile-up of Re: and references."""
    original = (answered.subject if answered else None) or "Your request"
    # A subject from outside may decode (RFC 2047) to line breaks: they never reach our headers.
    original = " ".join(original.split())
    original = _REPLY_PREFIX.sub("", original.replace(f"[{case.reference}]", "")).strip()
    return f"Re: [{case.reference}] {original}".rstrip()


def fill_placeholders(text: str, values: Mapping[str, str]) -> str:
    """``{reference}`` and ``{requester_name}`` only: a canned text can never reach other data."""
    return re.sub(r"\{(reference|requester_name)\}", lambda m: values.get(m[1], ""), text)


def canned_for(session: Session, case: Case) -> list[CannedResponse]:
    return list(
        session.scalars(
            select(CannedResponse)
            .where((CannedResponse.team.is_(None)) | (CannedResponse.team == case.team))
            .order_by(CannedResponse.title)
        )
    )


def reply_recipient(case: Case, answered: Message | None) -> str:
    """Answer the person who wrote the message answered, or else the requester."""
    if answered is not None and answered.direction == Direction.INBOUND and answered.sender:
        return answered.sender
    if case.requester is not None:
        return case.requester.email
    raise ReplyError("This case has no address to reply to.")


def send_reply(
    session: Session,
    settings: Settings,
    secret_key: str,
    *,
    staff: StaffUser,
    case: Case,
    body: str,
    answered: Message | None,
    now: datetime | None = None,
) -> OutboundMail:
    now = now or utcnow()
    if answered is not None and answered.case_id != case.id:
        raise ReplyError("That message belongs to another case.")
    outbound = queue_mail(
        session,
        settings,
        secret_key,
        case=case,
        to=reply_recipient(case, answered),
        subject=reply_subject(case, answered),
        text=body,
        purpose=MailPurpose.REPLY,
        **thread_under(answered),
        author_staff_id=staff.id,
        now=now,
    )
    session.execute(
        delete(ReplyPresence).where(
            ReplyPresence.case_id == case.id, ReplyPresence.staff_id == staff.id
        )
    )
    audit.record(
        session,
        actor=audit.staff_actor(staff),
        action="case.replied",
        case_id=case.id,
        details={"outbound_id": outbound.id, "message_id": outbound.message_id},
        now=now,
    )
    return outbound


def note_reply_opened(
    session: Session, staff: StaffUser, case: Case, now: datetime | None = None
) -> None:
    session.add(ReplyPresence(case_id=case.id, staff_id=staff.id, opened_at=now or utcnow()))


def others_replying(
    session: Session, staff: StaffUser, case: Case, window: timedelta, now: datetime | None = None
) -> list[StaffUser]:
    """Colleagues who opened the reply box of this case within ``window`` and have not sent."""
    now = now or utcnow()
    # Each colleague once: an IN over their ids, not a DISTINCT over whole rows, which
    # PostgreSQL refuses for the JSON roles column (json has no equality operator).
    present = select(ReplyPresence.staff_id).where(
        ReplyPresence.case_id == case.id,
        ReplyPresence.staff_id != staff.id,
        ReplyPresence.opened_at >= now - window,
    )
    return list(
        session.scalars(select(StaffUser).where(StaffUser.id.in_(present)).order_by(StaffUser.id))
    )
