"""Outgoing mail: composed and queued inside the transaction, delivered by a worker after it.

The life of a mail::

    queue_mail()  ──(commit)──►  pending ──claim──► sending ──accepted──► sent
                                    ▲                  │
                                    └─ refused for now ┤  (attempts += 1, retry later)
                                                       └─ refused for good, or out of
                                                          attempts ──► failed (reason on
                                                          the case)

Web requests only queue: the delivery worker (``flask --app wsgi outbox run``, and
``mailbridge run`` on each round) sends. A claim is a conditional UPDATE, so two workers never
send the same row at once; a worker that dies while sending leaves a claim that expires, and
the mail is retried rather than lost. SMTP cannot tell a mail that was taken just before the
connection broke from one that was not, so delivery is at least once, always with the same
Message-ID (the raw bytes are composed once, at queue time).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from flask import render_template
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from portal import mail_transport
from portal.addresses import mail_address
from portal.config import Settings
from portal.mail_transport import PermanentFailure, TransientFailure, envelope_address
from portal.message_ids import make_message_id
from portal.models import Case, Message, OutboundMail
from portal.models.base import utcnow
from portal.models.message import Channel, Direction, OutboxState
from portal.policy.routing import RoleAddress, address_for_team
from portal.services import audit
from portal.services.bulk import add_with_id

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=10)
# Retry soon for a blip, then back off; after PORTAL_MAIL_MAX_ATTEMPTS the mail is failed and
# shown as such on its case.
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
    """One delivery round: mail accepted, failed for good, and still owed afterwards
    (pending, including mail whose worker's claim has run out)."""

    sent: int
    failed: int
    pending: int


def team_address(settings: Settings, team: str) -> str:
    """The configured address of the role address mail about ``team``'s cases goes out from
    (portal.policy.routing.address_for_team)."""
    return {
        RoleAddress.CA: settings.address_ca,
        RoleAddress.LEGAL: settings.address_legal,
        RoleAddress.APPEALS: settings.address_appeals,
    }[address_for_team(team)]


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


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, building each header class once.

    Python's registry makes a new class with ``type()`` on every lookup, and the email
    package looks one up for every header it sets or counts (``header_max_count``): that was
    about a third of composing a mail, on the path of every web filing.
    """

    def __init__(self) -> None:
        super().__init__()
        self._built: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._built.get(key)
        if cls is None:
            cls = self._built[key] = super().__getitem__(name)
        return cls


_HEADERS = _HeaderClasses()
# Bodies in quoted-printable or base64: the bytes pass servers without 8BITMIME unchanged.
_ASCII_MAIL = policy.SMTP.clone(cte_type="7bit", header_factory=_HEADERS)
_UTF8_MAIL = policy.SMTPUTF8.clone(header_factory=_HEADERS)


def compose(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    in_reply_to: str | None,
    references: Sequence[str],
    auto_reply: bool,
    date: datetime,
) -> bytes:
    """The mail as it goes on the wire, composed once so every attempt sends the same bytes.

    Headers are ASCII wherever they can be: an address with an ASCII local part is written
    with its domain in IDNA form. Only an address that cannot be ASCII (``josé@example.com``)
    makes the whole head UTF-8 (RFC 6532), which then needs the server's SMTPUTF8.
    """
    try:
        header_to = envelope_address(to)
    except PermanentFailure:
        header_to = to  # queued all the same: delivery fails it with the reason on the case
    composed = EmailMessage(policy=_ASCII_MAIL if header_to.isascii() else _UTF8_MAIL)
    try:
        composed["From"] = sender
        composed["To"] = header_to
        composed["Subject"] = subject
        composed["Date"] = format_datetime(date)
        composed["Message-ID"] = message_id
        if in_reply_to:
            composed["In-Reply-To"] = in_reply_to
        if references:
            composed["References"] = " ".join(references)
        if auto_reply:
            # RFC 3834: well-behaved responders will not answer this, which breaks mail loops.
            composed["Auto-Submitted"] = "auto-replied"
            composed["X-Auto-Response-Suppress"] = "All"
    except ValueError as exc:  # the email package refuses CR or LF in any header value
        raise HeaderInjectionError("a header value contains a line break") from exc
    composed.set_content(text)
    if html is not None:
        composed.add_alternative(html, subtype="html")
    return composed.as_bytes()


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

    Nothing is sent here: the delivery worker sends it once the transaction has committed.
    """
    sender = team_address(settings, case.team)
    _check_header("To", to)
    subject = header_text(subject)
    in_reply_to = next(iter(message_id_list([in_reply_to or ""])), None)
    references = list(dict.fromkeys(message_id_list(references)))[-MAX_REFERENCES:]

    message_id = make_message_id(
        secret=secret_key, case_id=case.id, recipient=to, domain=settings.mail_domain
    )
    now = now or utcnow()
    raw = compose(
        sender=sender,
        to=to,
        subject=subject,
        text=text,
        html=html,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        auto_reply=auto_reply,
        date=now,
    )

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
        recipients=[mail_address(to)],  # the envelope: the domain in ASCII (IDNA)
        raw=raw,
        purpose=purpose,
        next_attempt_at=now,
        created_at=now,
    )
    add_with_id(session, outbound)
    return outbound


def deliver_due(
    session: Session,
    settings: Settings,
    *,
    only: Iterable[int] | None = None,
    now: datetime | None = None,
) -> Delivery:
    """Send every mail that is due (or just ``only`` these), committing after each one.

    Whatever goes wrong with one mail (a refusal, a timeout, an address the server cannot
    take, a bug of ours) is recorded on that mail, and the next one is sent all the same.
    """
    now = now or utcnow()
    query = select(OutboundMail.id).where(
        OutboundMail.state.in_([OutboxState.PENDING, OutboxState.SENDING]),
        OutboundMail.next_attempt_at <= now,
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
        except PermanentFailure as exc:
            _fail(session, outbound, str(exc), now)
            failed += 1
        except Exception as exc:  # one mail's trouble, whatever it is, never stops the queue
            if not _retry_later(session, outbound, _reason(exc), settings, now):
                failed += 1
        else:
            outbound.attempts += 1
            outbound.state = OutboxState.SENT
            outbound.sent_at = now
            outbound.last_error = None
            sent += 1
        session.commit()
    return Delivery(sent=sent, failed=failed, pending=count_pending(session, now=now))


def count_pending(session: Session, *, now: datetime | None = None) -> int:
    """Mail still owed: pending, and mail whose worker's claim ran out (it died sending)."""
    now = now or utcnow()
    owed = or_(
        OutboundMail.state == OutboxState.PENDING,
        and_(OutboundMail.state == OutboxState.SENDING, OutboundMail.next_attempt_at <= now),
    )
    return session.scalar(select(func.count(OutboundMail.id)).where(owed)) or 0


def _reason(exc: Exception) -> str:
    if isinstance(exc, TransientFailure):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:2000]


def _retry_later(
    session: Session, outbound: OutboundMail, reason: str, settings: Settings, now: datetime
) -> bool:
    """Schedule the next attempt; False when this was the last one and the mail failed."""
    outbound.attempts += 1
    if outbound.attempts >= settings.mail_max_attempts:
        _fail(session, outbound, f"gave up after {outbound.attempts} attempts: {reason}", now)
        return False
    delay = RETRY_SCHEDULE[min(outbound.attempts, len(RETRY_SCHEDULE)) - 1]
    outbound.state = OutboxState.PENDING
    outbound.next_attempt_at = now + delay
    outbound.last_error = reason
    log.warning(
        "outbound mail #%s not delivered, attempt %s, retry in %s",
        outbound.id,
        outbound.attempts,
        delay,
    )
    return True


def _fail(session: Session, outbound: OutboundMail, reason: str, now: datetime) -> None:
    """Never to be sent: the reason is shown on the case, and the case's trail records it."""
    outbound.state = OutboxState.FAILED
    outbound.last_error = reason[:2000]
    outbound.next_attempt_at = now
    audit.record(
        session,
        actor="system",
        action="mail.failed",
        case_id=outbound.case_id,
        details={"outbound_id": outbound.id, "purpose": outbound.purpose},
        now=now,
    )
    log.warning("outbound mail #%s failed for good (%s)", outbound.id, outbound.purpose)


def _claim(session: Session, outbound_id: int, now: datetime) -> bool:
    claimed = session.execute(
        update(OutboundMail)
        .where(
            OutboundMail.id == outbound_id,
            OutboundMail.next_attempt_at <= now,
            OutboundMail.state.in_([OutboxState.PENDING, OutboxState.SENDING]),
        )
        .values(state=OutboxState.SENDING, next_attempt_at=now + CLAIM_LEASE)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return claimed.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def _transmit(outbound: OutboundMail, settings: Settings) -> None:
    if not settings.mail_server:
        name = f"{outbound.id:06d}-{outbound.purpose}"
        path = mail_transport.write_to_directory(settings.outbox_dir, name, outbound.raw)
        log.info("no SMTP server configured: wrote outbound mail #%s to %s", outbound.id, path)
        return
    with mail_transport.smtp_connection(settings) as connection:
        mail_transport.send(connection, outbound.envelope_from, outbound.recipients, outbound.raw)
    log.info("outbound mail #%s accepted by %s", outbound.id, settings.mail_server)
