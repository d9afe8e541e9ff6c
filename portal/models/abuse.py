"""Abuse of the reporting channels: marks on a reporter, warnings, and lockouts.

Policy ("Abusive requests are not acceptable"): abusive reports lead to a warning; if they
continue after it, a lock-out whose length follows seriousness, frequency, number and presumed
intent. The rule lives in portal/policy/abuse.py; these rows record what staff decided and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, utcnow
from portal.policy.abuse import in_force


class AbuseMark(Base):
    __tablename__ = "abuse_marks"

    id: Mapped[int] = mapped_column(primary_key=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("reporters.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    category: Mapped[str] = mapped_column(String(40))
    seriousness: Mapped[str] = mapped_column(String(16))
    intent: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<AbuseMark #{self.id} reporter={self.reporter_id} {self.seriousness}>"


class AbuseWarning(Base):
    """The warning a reporter received; confidential, on their record, sent by mail."""

    __tablename__ = "abuse_warnings"

    id: Mapped[int] = mapped_column(primary_key=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("reporters.id"), index=True)
    mark_id: Mapped[int | None] = mapped_column(ForeignKey("abuse_marks.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    outbound_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbound_mail.id", ondelete="SET NULL")
    )
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<AbuseWarning #{self.id} reporter={self.reporter_id}>"


class Lockout(Base):
    """A period in which the portal refuses a reporter's requests and quarantines their mail."""

    __tablename__ = "lockouts"
    __table_args__ = (Index("ix_lockouts_reporter_id_ends_at", "reporter_id", "ends_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("reporters.id"))
    mark_id: Mapped[int | None] = mapped_column(ForeignKey("abuse_marks.id", ondelete="SET NULL"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    # What the rule proposed, factor by factor, so staff and an appeal can see why.
    proposed_days: Mapped[int]
    factors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    override_reason: Mapped[str | None] = mapped_column(Text)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    lifted_at: Mapped[datetime | None]
    lifted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    lift_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def active_at(self, moment: datetime) -> bool:
        """In force at ``moment`` (the rule ``portal.services.abuse`` queries by)."""
        return in_force(self.starts_at, self.ends_at, self.lifted_at, moment)

    def __repr__(self) -> str:
        return f"<Lockout #{self.id} reporter={self.reporter_id} until {self.ends_at:%Y-%m-%d}>"
