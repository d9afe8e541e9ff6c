"""An appeal of a decision: from the first filing, through confirmation, to its outcome.

The appeal's conversation is a case of kind ``appeal`` (``appeal_case_id``); this row holds
what the case cannot: who appeals in which role, the single-use confirmation nonce, whether
the rules refused it, who reviews it and what they decided. A filing that was never
confirmed stays here and never reaches a queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, utcnow
from portal.policy.appeals import AppealState


class Appeal(Base):
    __tablename__ = "appeals"
    __table_args__ = (Index("ix_appeals_case_id_state", "case_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The case whose decision is appealed.
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    # The appeal's own case (kind appeal) once confirmed; for mail, the inquiry it came in.
    appeal_case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="SET NULL"), unique=True
    )
    role: Mapped[str] = mapped_column(String(16))  # portal.policy.appeals.AppellantRole
    channel: Mapped[str] = mapped_column(String(16))  # web | mail
    # The address on record for the role: where every answer about this appeal goes.
    appellant_email: Mapped[str] = mapped_column(String(320))
    reasons: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)
    # Files of a web filing, already in the blob store: [{filename, content_type, size, sha256}].
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    source_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )
    state: Mapped[str] = mapped_column(String(16), default=AppealState.PENDING)
    refusal: Mapped[str | None] = mapped_column(String(32))
    route: Mapped[str | None] = mapped_column(String(16))
    route_reason: Mapped[str | None] = mapped_column(Text)
    # Random and unique; the signed link carries it. Confirming sets confirmed_at with a
    # conditional UPDATE, so a link works once even when clicked twice at the same moment.
    nonce: Mapped[str | None] = mapped_column(String(64), unique=True)
    filed_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    outcome_reasons: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Appeal #{self.id} case={self.case_id} {self.role} {self.state}>"
