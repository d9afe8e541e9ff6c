"""Per-mailbox IMAP cursor, advanced in the same transaction as the messages it covers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, utcnow


class MailboxState(Base):
    __tablename__ = "mailbox_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)  # "ca", "appeals"
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    # A lease lets bridges on several hosts share the work without taking the same mailbox.
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<MailboxState {self.name} v={self.uidvalidity} last={self.last_uid}>"
