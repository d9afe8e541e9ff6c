"""Messages on a case timeline, their attachments, and mail waiting to go out."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, utcnow

if TYPE_CHECKING:
    from portal.models.case import Case


class Direction(StrEnum):
    INBOUND = "inbound"  # from outside: the web form, or mail
    OUTBOUND = "outbound"  # mail we sent
    NOTE = "note"  # staff only, never sent


class Channel(StrEnum):
    WEB = "web"
    MAIL = "mail"


class Message(Base):
    """One row of a case timeline, whatever its channel or direction.

    Mail keeps where it came from (mailbox, UIDVALIDITY, UID) and a de-duplication key per
    mailbox (the Message-ID, or ``sha256:<hash>`` when there is none). Both are unique, so a
    crash and a re-run can never store the same mail twice: the database refuses it.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid"),
        UniqueConstraint("mailbox", "dedup_key"),
        Index("ix_messages_case_id_id", "case_id", "id"),
        # Quarantine is a handful of rows among millions: index only those.
        Index(
            "ix_messages_quarantine",
            "urgent",
            sqlite_where=text("quarantined = 1"),
            postgresql_where=text("quarantined"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Nullable: quarantined or unmatched mail is kept even when it belongs to no case yet.
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))

    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(String(320), index=True)
    sender_name: Mapped[str | None] = mapped_column(String(200))
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)  # sanitized, never the raw HTML
    sent_at: Mapped[datetime | None]  # the Date header, or arrival time when it is unusable
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    raw_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    # SHA-256 of the author's headers and body (mailbridge.fingerprint): equal for one mail
    # that arrived twice with different trace headers or line ends, so it is stored once.
    content_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    raw_size: Mapped[int | None]
    mailbox: Mapped[str | None] = mapped_column(String(64))
    # IMAP UIDs are unsigned 32-bit: past a signed INTEGER on PostgreSQL.
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    dedup_key: Mapped[str | None] = mapped_column(String(998))
    auth_results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Inbound mail: whether something proves the From wrote it (our server's DMARC pass for
    # its domain, or a reply to our signed Message-ID for that address; mailbridge.senders).
    # False: filed as evidence, and no automatic step acts on it as that person. None: not
    # mail the bridge judged (the web, our own mail, rows from before the check existed).
    sender_verified: Mapped[bool | None]

    auto_submitted: Mapped[bool] = mapped_column(default=False)
    bounce: Mapped[bool] = mapped_column(default=False)
    quarantined: Mapped[bool] = mapped_column(default=False)
    # A channel the law keeps open (child protection, a court order) even during a lockout:
    # quarantined all the same, but raised to staff as urgent.
    urgent: Mapped[bool] = mapped_column(default=False)
    quarantine_released_at: Mapped[datetime | None]
    # Why staff should look: a parse failure, a size limit, a stranger quoting a reference.
    flag_reason: Mapped[str | None] = mapped_column(Text)

    author_staff_id: Mapped[int | None]

    case: Mapped[Case | None] = relationship(back_populates="messages")
    # selectin: a timeline's attachments come in one query, not one per message.
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan", lazy="selectin"
    )

    def __repr__(self) -> str:
        return f"<Message #{self.id} case={self.case_id} {self.direction}/{self.channel}>"


class Attachment(Base):
    """A file that came with a message; its bytes live in the blob store under their SHA-256."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    inline: Mapped[bool] = mapped_column(default=False)
    content_id: Mapped[str | None] = mapped_column(String(998))

    message: Mapped[Message] = relationship(back_populates="attachments")

    def __repr__(self) -> str:
        return f"<Attachment #{self.id} {self.content_type} {self.size}B>"


class OutboxState:
    PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
    SENDING = "sending"  # claimed by a worker until next_attempt_at; then pending again
    SENT = "sent"  # accepted by the mail server: never sent again
    FAILED = "failed"  # refused for good, or given up on: the reason is on the case


class OutboundMail(Base):
    """A mail we owe someone, kept until a server has accepted it or refused it for good.

    Rows are written in the same transaction as the timeline message they deliver and sent by
    the delivery worker after that commit; a failure leaves the row pending with a retry time,
    so a mail is never lost and, once marked sent, never sent again by us. A connection cut
    after the server took the data but before it said so is retried: delivery is at least
    once, with the same Message-ID each time.
    """

    __tablename__ = "outbound_mail"
    __table_args__ = (Index("ix_outbound_mail_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    timeline_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    envelope_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    purpose: Mapped[str] = mapped_column(String(32))  # portal.policy.mail.MailPurpose
    state: Mapped[str] = mapped_column(String(16), default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<OutboundMail #{self.id} {self.purpose} {self.state}>"
