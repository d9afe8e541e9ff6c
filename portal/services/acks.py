"""Automatic acknowledgements, with the guards that keep them from becoming a nuisance.

When one is sent, and its limits, are rules (``portal.policy.mail``); here they are counted
and the mail is queued.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.config import Settings
from portal.models import Case, OutboundMail
from portal.models.base import utcnow
from portal.policy.actions import rule_for
from portal.policy.mail import ACK_WINDOW, MailPurpose, within_daily_limit
from portal.services.outbound import queue_template_mail

log = logging.getLogger(__name__)


def acks_sent_recently(session: Session, reporter_id: int, now: datetime) -> int:
    """Acknowledgements to this person in the last day: stored ones, and ones queued in this
    transaction but not yet written (the mail bridge writes a whole batch at its end, and
    counting must not force the batch's rows out one acknowledgement at a time)."""
    with session.no_autoflush:
        stored = session.scalar(
            select(func.count(OutboundMail.id))
            .join(Case, Case.id == OutboundMail.case_id)
            .where(
                Case.requester_id == reporter_id,
                OutboundMail.purpose == MailPurpose.ACKNOWLEDGEMENT,
                OutboundMail.created_at >= now - ACK_WINDOW,
            )
        )
    pending = list(session.new)
    theirs = {
        row.id for row in pending if isinstance(row, Case) and row.requester_id == reporter_id
    }
    queued = sum(
        1
        for row in pending
        if isinstance(row, OutboundMail)
        and row.purpose == MailPurpose.ACKNOWLEDGEMENT
        and row.case_id in theirs
    )
    return (stored or 0) + queued


def _acknowledge(
    session: Session,
    settings: Settings,
    secret_key: str,
    *,
    case: Case,
    to: str,
    subject: str,
    template: str,
    context: dict[str, Any],
    now: datetime,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
) -> OutboundMail | None:
    """The daily limit, then the paired .txt/.html templates queued as an auto-reply."""
    if case.requester_id is None:
        raise ValueError(f"{case.reference} has no requester to acknowledge")
    sent = acks_sent_recently(session, case.requester_id, now)
    if not within_daily_limit(sent, settings.acks_per_address_per_day):
        log.info("acknowledgement for %s not sent: daily limit for this person", case.reference)
        return None
    return queue_template_mail(
        session,
        settings,
        secret_key,
        template=template,
        context={**context, "case": case},
        case=case,
        to=to,
        subject=subject,
        purpose=MailPurpose.ACKNOWLEDGEMENT,
        in_reply_to=in_reply_to,
        references=references,
        auto_reply=True,
        now=now,
    )


def acknowledge_request(
    session: Session,
    settings: Settings,
    secret_key: str,
    *,
    case: Case,
    to: str,
    submission_text: str,
    now: datetime | None = None,
) -> OutboundMail | None:
    """Queue the acknowledgement of a new web request, or None when the daily limit is met."""
    return _acknowledge(
        session,
        settings,
        secret_key,
        case=case,
        to=to,
        subject=f"[{case.reference}] We received your request",
        template="ack_request",
        context={
            "rule": rule_for(case.action) if case.action else None,
            "submission_text": submission_text,
        },
        now=now or utcnow(),
    )


def acknowledge_mail(
    session: Session,
    settings: Settings,
    secret_key: str,
    *,
    case: Case,
    to: str,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    now: datetime | None = None,
) -> OutboundMail | None:
    """Queue the acknowledgement of a case opened by mail, or None when the daily limit is met.

    The caller has already ruled out automatic mail, bounces and our own addresses. The mail
    threads under the message it answers and quotes none of it: the From of inbound mail can
    be forged, and an acknowledgement must not carry a stranger's words to someone else.
    """
    thread = [*references, *([in_reply_to] if in_reply_to else [])]  # queue_mail trims it
    return _acknowledge(
        session,
        settings,
        secret_key,
        case=case,
        to=to,
        subject=f"[{case.reference}] We received your message",
        template="ack_mail",
        context={},
        now=now or utcnow(),
        in_reply_to=in_reply_to,
        references=list(dict.fromkeys(thread)),
    )
