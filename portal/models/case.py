"""A case: one conversation with the public about one request, notice, appeal or inquiry."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from portal.models.base import Base, TimestampMixin
from portal.policy.actions import CaseKind, CaseStatus, Priority
from portal.policy.routing import Team

if TYPE_CHECKING:
    from portal.models.message import Message
    from portal.models.people import Reporter

# Form and column agree on these (style guide: take limits from the model).
SUMMARY_MAX_CHARS = 4_000
DETAILS_MAX_CHARS = 20_000
SHORT_TEXT_MAX = 200
URLS_MAX = 300  # links per list field: a long ban request's diffs fit, a pasted dump does not
URL_MAX_CHARS = 2_000

# Cases with no policy clock sort after every dated case in a queue.
NO_DUE_DATE = datetime(9999, 12, 31, tzinfo=UTC)


class Case(TimestampMixin, Base):
    __tablename__ = "cases"
    # The server defaults below are for migrations; every insert sets those columns from
    # Python, so there is nothing to read back (on SQLite, reading back means a row at a time).
    __mapper_args__ = {"eager_defaults": False}
    __table_args__ = (
        Index("ix_cases_team_status_due", "team", "status", "due_at"),
        # The queue order: urgent first, then by due time (see services/inbox.py), per team
        # and across the teams one person sees. The inbox reads one priority at a time, so
        # each page is a walk along one of these indexes with no sort.
        Index("ix_cases_queue_order", "team", "priority", "queue_due_at", "id"),
        Index("ix_cases_order", "priority", "queue_due_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Set right after the insert, from the id: see services.cases.add_case.
    reference: Mapped[str | None] = mapped_column(String(20), unique=True)
    kind: Mapped[str] = mapped_column(String(32), default=CaseKind.REQUEST)
    action: Mapped[str | None] = mapped_column(String(32))
    team: Mapped[str] = mapped_column(String(32), default=Team.TRUST_SAFETY)
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.NEW)
    priority: Mapped[str] = mapped_column(String(16), default=Priority.NORMAL)
    due_at: Mapped[datetime | None]
    # due_at, or NO_DUE_DATE: a non-null copy that an index can keep in queue order, so the
    # inbox never sorts 100,000 cases to show fifty. Kept in step by _sync_queue_due_at.
    queue_due_at: Mapped[datetime] = mapped_column(default=NO_DUE_DATE)

    requester_id: Mapped[int | None] = mapped_column(ForeignKey("reporters.id"), index=True)
    requester_name: Mapped[str | None] = mapped_column(String(SHORT_TEXT_MAX))
    summary: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)
    evidence_urls: Mapped[list[str]] = mapped_column(JSON, default=list)
    prior_attempt_urls: Mapped[list[str]] = mapped_column(JSON, default=list)
    no_prior_attempt_reason: Mapped[str | None] = mapped_column(Text)
    scope_location: Mapped[str | None] = mapped_column(String(SHORT_TEXT_MAX))
    scope_project: Mapped[str | None] = mapped_column(String(SHORT_TEXT_MAX))
    scope_until: Mapped[date | None]

    decision: Mapped[str | None] = mapped_column(String(16))
    decided_at: Mapped[datetime | None]
    modified_at: Mapped[datetime | None]
    appeal_of_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    # The case another one names without being part of it: mail from a stranger quoting a
    # reference, or a reply that reached the wrong team's mailbox. Staff decide on a merge.
    # A pointer, not a foreign key: cases are never deleted, and without a constraint SQLite
    # can add the column in place (migration 0002_mailbridge) instead of rebuilding `cases`.
    linked_case_id: Mapped[int | None] = mapped_column(index=True)
    confidential: Mapped[bool] = mapped_column(default=False)
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), index=True
    )
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    decision_details: Mapped[str | None] = mapped_column(Text)
    # Appeals (portal.policy.appeals). An event ban that is part of (or led to) a global ban is not
    # appealable; one with no end date that is not irrevocable is reviewed by Trust & Safety.
    part_of_global_ban: Mapped[bool] = mapped_column(default=False, server_default=false())
    irrevocable: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Trust & Safety may let the review committee read the whole file of a case under appeal;
    # without it, reviewers see only the decision (see portal.access).
    shared_with_reviewers: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Set when an appeal overturned this case's decision.
    overruled_at: Mapped[datetime | None]

    requester: Mapped[Reporter | None] = relationship()
    messages: Mapped[list[Message]] = relationship(
        back_populates="case", order_by="Message.id", cascade="all, delete-orphan"
    )
    parties: Mapped[list[CaseParty]] = relationship(
        back_populates="case", cascade="all, delete-orphan"
    )

    @property
    def timeline(self) -> list[Message]:
        """The messages staff read on the case: all but mail still held in quarantine (it is
        shown on the quarantine page until someone releases it)."""
        return [message for message in self.messages if not message.quarantined]

    @validates("due_at")
    def _sync_queue_due_at(self, key: str, value: datetime | None) -> datetime | None:
        self.queue_due_at = value or NO_DUE_DATE
        return value

    def __repr__(self) -> str:
        return f"<Case {self.reference or self.id} {self.kind}/{self.action} {self.status}>"


class CaseParty(Base):
    """An address that may write into a case: the requester, the subject, or one staff added.

    Mail quoting a case reference only joins that case when its sender is a party, so a
    stranger cannot write into (or read back from) someone else's case.
    """

    __tablename__ = "case_parties"
    __table_args__ = (UniqueConstraint("case_id", "address", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    # Canonical form (portal.addresses.canonical_address), so variants match.
    address: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(16))  # portal.policy.roles.PartyRole
    added_by: Mapped[str | None] = mapped_column(String(320))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    case: Mapped[Case] = relationship(back_populates="parties")

    def __repr__(self) -> str:
        return f"<CaseParty case={self.case_id} {self.role}>"
