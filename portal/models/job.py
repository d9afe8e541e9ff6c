"""Work a web request promised but leaves to the delivery worker (``outbox run``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, utcnow


class JobState:
    PENDING = "pending"  # waiting for next_attempt_at
    RUNNING = "running"  # claimed by a worker until next_attempt_at; then pending again
    DONE = "done"
    FAILED = "failed"  # given up on after its attempts; the error is kept for operators


class Job(Base):
    """A stored unit of work, so that a web worker killed after answering loses nothing.

    The payload is what the work needs and nothing more; it is emptied once the work is done.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default=JobState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<Job #{self.id} {self.kind} {self.state}>"
