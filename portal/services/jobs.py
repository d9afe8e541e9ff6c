"""Stored jobs: work a web request promised, done by the delivery worker after it answered.

A web request that must answer before it works (an appeal filing: the same answer and the
same time whatever the filing matches) stores a :class:`~portal.models.Job` in its own
transaction and answers; ``outbox run`` then claims and runs it. A worker killed at any point
loses nothing: an unclaimed job waits, a claimed one whose claim runs out is run again, so a
handler must be safe to run twice (each runs in one transaction, which either committed with
the job marked done or did not happen at all).

Handlers are named here, by kind, and imported when first needed::

    enqueue(session, "appeal.file", {...})  ──(commit)──►  pending ──claim──► running
        ──handler committed──► done (payload emptied)
        ──handler raised──► pending again later, or failed after MAX_ATTEMPTS
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.config import Settings
from portal.models import Job, JobState
from portal.models.base import utcnow

log = logging.getLogger(__name__)

# A handler gets (session, settings, secret_key, payload) and may return what to do once its
# transaction has committed (tidying files it no longer needs).
Handler = Callable[[Session, Settings, str, dict[str, Any]], Callable[[], None] | None]

# kind -> "module:function"
HANDLERS: dict[str, str] = {
    "appeal.file": "portal.services.appeals:file_appeal_job",
}
CLAIM_LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 8
RETRY_AFTER = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10))


@dataclass(frozen=True)
class JobRound:
    done: int
    failed: int


def enqueue(
    session: Session, kind: str, payload: dict[str, Any], *, now: datetime | None = None
) -> Job:
    """Store a job in the caller's transaction; it runs once that transaction has committed."""
    if kind not in HANDLERS:
        raise ValueError(f"no handler for jobs of kind {kind!r}")
    now = now or utcnow()
    job = Job(kind=kind, payload=payload, next_attempt_at=now, created_at=now)
    session.add(job)
    return job


def run_due(
    session: Session, settings: Settings, secret_key: str, *, now: datetime | None = None
) -> JobRound:
    """Run every job that is due, each in its own transaction; one failing never stops the rest."""
    now = now or utcnow()
    due = session.scalars(
        select(Job.id)
        .where(Job.state.in_([JobState.PENDING, JobState.RUNNING]), Job.next_attempt_at <= now)
        .order_by(Job.id)
    ).all()
    session.commit()
    done = failed = 0
    for job_id in due:
        if not _claim(session, job_id, now):
            continue
        job = session.get_one(Job, job_id)
        kind, payload = job.kind, dict(job.payload or {})
        try:
            after_commit = _handler(kind)(session, settings, secret_key, payload)
            job.state = JobState.DONE
            job.finished_at = utcnow()
            job.payload = {}  # what the person typed lives on in the rows the handler wrote
            job.last_error = None
            session.commit()
        except Exception as exc:
            session.rollback()
            failed += _postpone(session, job_id, exc, now)
            continue
        done += 1
        if after_commit is not None:
            try:
                after_commit()
            except OSError:
                log.warning("job #%s: tidying up after it failed", job_id, exc_info=True)
    return JobRound(done=done, failed=failed)


def _handler(kind: str) -> Handler:
    module, _, function = HANDLERS[kind].partition(":")
    handler: Handler = getattr(importlib.import_module(module), function)
    return handler


def _claim(session: Session, job_id: int, now: datetime) -> bool:
    claimed = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.next_attempt_at <= now,
            Job.state.in_([JobState.PENDING, JobState.RUNNING]),
        )
        .values(state=JobState.RUNNING, next_attempt_at=now + CLAIM_LEASE)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return claimed.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def _postpone(session: Session, job_id: int, exc: Exception, now: datetime) -> int:
    """Record the failure on the job; 1 when it has now failed for good."""
    job = session.get_one(Job, job_id)
    job.attempts += 1
    job.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    if job.attempts >= MAX_ATTEMPTS:
        job.state = JobState.FAILED
        job.finished_at = now
        log.error("job #%s (%s) failed for good after %s attempts", job.id, job.kind, job.attempts)
    else:
        job.state = JobState.PENDING
        job.next_attempt_at = now + RETRY_AFTER[min(job.attempts, len(RETRY_AFTER)) - 1]
        log.warning(
            "job #%s (%s) failed (%s), attempt %s",
            job.id,
            job.kind,
            type(exc).__name__,
            job.attempts,
            exc_info=True,
        )
    session.commit()
    return int(job.state == JobState.FAILED)
