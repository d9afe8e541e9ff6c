"""The audit trail: append-only, each row chained to the one before by a keyed hash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The event's place in the chain: 1, 2, 3, ... Unique, so two transactions that read the
    # same chain head and both append to it fail loudly at the second commit instead of
    # forking the chain silently.
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="SET NULL"), index=True
    )
    # "public", "mailbridge", "system", or "staff:<id>": never an address.
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"<AuditEvent #{self.id} seq={self.seq} {self.action} case={self.case_id}>"
