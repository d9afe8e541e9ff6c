"""Outgoing mail: composed and queued inside the transaction, delivered after the commit.

The life of a mail::

    queue_mail()  ──(commit)──►  pending ──claim──► sending ──accepted──► sent
                                    ▲                  │
                                    └── refused/down ──┘  (attempts += 1, retry later)

A claim is a conditional UPDATE, so two workers never send the same row; a worker that dies
while sending leaves a claim that expires, and the mail is retried rather than lost.
"""

from __future__ import annotations

import logging
import re
import smtplib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

from flask import render_template
from flask_mail import Message as MailMessage
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from portal.addresses import mail_address
from portal.config import Settings
from portal.extensions import mail
from portal.message_ids import make_message_id
from portal.models import Case, Message, OutboundMail
from portal.models.base import utcnow
from portal.models.message import Channel, Direction, OutboxState
from portal.policy import Team
from portal.services.bulk import add_with_id

log = logging.getLogger(__name__)

SENDING = "sending"
CLAIM_LEASE = timedelta(minutes=10)
# Retry soon for a blip, then back off; never give up: a pending mail is visible to staff.
RETRY_SCHEDULE = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
)


class HeaderInjectionError(ValueError):
    """A value meant for one header would have written another."""


@dataclass(frozen=True)
class Delivery:
    sent: int
    failed: int


def team_address(settings: Settings, team: str) -> str:
    return {
        Team.LEGAL: settings.address_legal,
        Team.APPEALS: settings.address_appeals,
    }.get(Team(team), settings.address_ca)


def _check_header(name: str, value: str) -> str:
    if any(ch in value for ch in "\r\n\0"):
        raise HeaderInjectionError(f"line break in the {name} header")
    return value


_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_MSG_ID = re.compile(r"<[^<>\s\\\"=?]+@[^<>\s\\\"=?]+>")


def header_text(value: str) -> str:
    """Text that is safe as an unstructured header such as Subject.

    Python's mail policy decodes RFC 2047 encoded words in a value as it sets it, so
    ``=?utf-8?q?Hi=0D=0ABcc=3A_x?=`` in a subject taken from incoming mail would become a
    line break and a forged ``Bcc:``. We decode such words ourselves (until none are left)
    and fold every run of white space, line breaks included, into one space.
    """
    for _ in range(5):
        if not _ENCODED_WORD.search(value):
            break
        value = str(make_header(decode_header(value)))
    value = _ENCODED_WORD.sub(lambda m: m[0].replace("=?", "= ?"), value)
    return " ".join(value.split())


def message_id_list(values: Iterable[str]) -> list[str]:
    """Only well-formed ``<left@right>`` Message-IDs, as they go into In-Reply-To/References."""
    return [token for value in values for token in _MSG_ID.findall(value or "")]


# A References chain longer than this is trimmed from its oldest end (RFC 5322 allows it):
# longer ones are loops or attacks.
MAX_REFERENCES = 20


def thread_under(answered: Message | None) -> dict[str, Any]:
    """``in_reply_to`` and ``references`` for :func:`queue_mail`, answering ``answered``."""
    if answered is None:
        return {"in_reply_to": None, "references": []}
    chain = (answered.references or "").split()
    return {
        "in_reply_to": answered.message_id,
        "references": [*chain, *([answered.message_id] if answered.message_id else [])],
    }


def queue_template_mail(
    session: Session,
    settings: Settings,
    secret_key: str,
    *,
    template: str,
    context: dict[str, Any],
    **mail: Any,
) -> OutboundMail:
    """:func:`queue_mail` with its text and HTML from ``mail/<template>.txt`` and ``.html``."""
    context = {**context, "site_name": settings.site_name}
    return queue_mail(
        session,
        settings,
        secret_key,
        text=render_template(f"mail/{template}.txt", **context),
        html=render_template(f"mail/{template}.html", **context),
        **mail,
    )


def queue_mail(
    session: Session,
    settings: Settings,
    secret_key: str,
    *,
    case: Case,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    purpose: str,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    auto_reply: bool = False,
    author_staff_id: int | None = None,
    now: datetime | None = None,
) -> OutboundMail:
    """Compose a mail from the case's team, put it on the timeline and in the outbox.

    Nothing is sent here: call :func:`deliver_due` after the transaction commits.
    """
    sender = team_address(settings, case.team)
    _check_header("To", to)
    envelope_to = mail_address(to)  # the domain in A-labels: josé@exämple.com needs no SMTPUTF8
    subject = header_text(subject)
    in_reply_to = next(iter(message_id_list([in_reply_to or ""])), None)
    references = list(dict.fromkeys(message_id_list(references)))[-MAX_REFERENCES:]

    message_id = make_message_id(
        secret=secret_key, case_id=case.id, recipient=to, domain=settings.mail_domain
    )
    headers = {}
    if in_reply_to:
        headers["In-Reply-To"] = in_reply_to
    if references:
        headers["References"] = " ".join(references)
    if auto_reply:
        # RFC 3834: well-behaved responders will not answer this, which breaks mail loops.
        headers["Auto-Submitted"] = "auto-replied"
        headers["X-Auto-Response-Suppress"] = "All"
    composed = MailMessage(
        subject=subject,
        recipients=[envelope_to],
        body=text,
        html=html,
        sender=sender,
        extra_headers=headers,
    )
    composed.msgId = message_id
    if composed.has_bad_headers():
        raise HeaderInjectionError("a header value contains a line break")
    raw = _as_bytes(composed, envelope_to)

    now = now or utcnow()
    timeline = Message(
        case_id=case.id,
        direction=Direction.OUTBOUND,
        channel=Channel.MAIL,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=" ".join(references) or None,
        sender=sender,
        recipients=[to],
        subject=subject,
        body_text=text,
        sent_at=now,
        created_at=now,
        auto_submitted=auto_reply,
        author_staff_id=author_staff_id,
    )
    add_with_id(session, timeline)
    outbound = OutboundMail(
        case_id=case.id,
        timeline_message_id=timeline.id,
        message_id=message_id,
        envelope_from=sender,
        recipients=[envelope_to],
        raw=raw,
        purpose=purpose,
        next_attempt_at=now,
        created_at=now,
    )
    add_with_id(session, outbound)
    return outbound


def _as_bytes(composed: MailMessage, to: str) -> bytes:
    """The message as it will be sent. Flask-Mail writes every address in ASCII, which an
    internationalised local part (``josé@example.com``, RFC 6531) cannot be: for one, the To
    header is written in UTF-8 as RFC 6532 has it, for a server that offers SMTPUTF8.
    (``_message()`` is Flask-Mail's own builder behind ``as_bytes()``: check it on upgrades.)"""
    if to.isascii():
        return composed.as_bytes()
    composed.recipients = []
    try:
        message = composed._message()
    finally:
        composed.recipients = [to]
    del message["To"]
    message["To"] = to
    return message.as_bytes(policy=policy.SMTPUTF8)


def deliver_due(
    session: Session,
    settings: Settings,
    *,
    only: Iterable[int] | None = None,
    now: datetime | None = None,
) -> Delivery:
    """Send every mail that is due (or just ``only`` these), committing after each one."""
    now = now or utcnow()
    query = select(OutboundMail.id).where(
        OutboundMail.state != OutboxState.SENT, OutboundMail.next_attempt_at <= now
    )
    if only is not None:
        query = query.where(OutboundMail.id.in_(list(only)))
    sent = failed = 0
    for outbound_id in session.scalars(query.order_by(OutboundMail.id)).all():
        if not _claim(session, outbound_id, now):
            continue
        outbound = session.get_one(OutboundMail, outbound_id)
        try:
            _transmit(outbound, settings)
        except (OSError, smtplib.SMTPException) as exc:
            failed += 1
            outbound.attempts += 1
            delay = RETRY_SCHEDULE[min(outbound.attempts, len(RETRY_SCHEDULE)) - 1]
            outbound.state = OutboxState.PENDING
            outbound.next_attempt_at = now + delay
            outbound.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            log.warning(
                "outbound mail #%s not delivered (%s), attempt %s, retry in %s",
                outbound.id,
                type(exc).__name__,
                outbound.attempts,
                delay,
            )
        else:
            sent += 1
            outbound.attempts += 1
            outbound.state = OutboxState.SENT
            outbound.sent_at = now
            outbound.last_error = None
        session.commit()
    return Delivery(sent=sent, failed=failed)


def _claim(session: Session, outbound_id: int, now: datetime) -> bool:
    claimed = session.execute(
        update(OutboundMail)
        .where(
            OutboundMail.id == outbound_id,
            OutboundMail.next_attempt_at <= now,
            or_(OutboundMail.state == OutboxState.PENDING, OutboundMail.state == SENDING),
        )
        .values(state=SENDING, next_attempt_at=now + CLAIM_LEASE)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return claimed.rowcount == 1


def _transmit(outbound: OutboundMail, settings: Settings) -> None:
    if not settings.mail_server:
        path = _write_to_outbox_dir(outbound, settings.outbox_dir)
        log.info("no SMTP server configured: wrote outbound mail #%s to %s", outbound.id, path)
        return
    with mail.connect() as connection:
        if connection.host is None:
            raise smtplib.SMTPException("Flask-Mail is set to suppress sending")
        connection.host.sendmail(outbound.envelope_from, outbound.recipients, outbound.raw)
    log.info("outbound mail #%s accepted by %s", outbound.id, settings.mail_server)


def _write_to_outbox_dir(outbound: OutboundMail, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{outbound.id:06d}-{outbound.purpose}.eml"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(outbound.raw)
    tmp.replace(path)
    return path
