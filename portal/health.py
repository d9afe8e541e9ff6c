"""``/healthz``: can this web worker do its job, asked by a load balancer every few seconds.

Three checks, each cheap (one ``SELECT 1``, one indexed ``MIN``, one empty file created and
removed), none cached and none rate-limited:

- ``database``: the database answers;
- ``blob_dir``: a file can be created in ``PORTAL_BLOB_DIR`` (evidence is written there
  before the rows that name it, so a full or read-only share stops intake);
- ``outbox``: no mail has been due for longer than ``PORTAL_HEALTH_MAIL_MAX_AGE_MINUTES``
  (30). Mail waiting for a retry hours away is not due, so an SMTP outage does not fail the
  check (the worker is doing its job); mail due and untouched for half an hour means no
  delivery worker (``outbox run`` or ``mailbridge run``) is running anywhere.

200 with ``{"status": "ok", "checks": {...}}`` when all pass; 503 with ``"failing"`` and
the failing check's reason otherwise. A reason names no path, URL, address or secret: the
answer is public to anyone who can reach the port.
"""

from __future__ import annotations

import errno
import logging
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask import Blueprint, Response, jsonify
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from portal.config import get_settings
from portal.extensions import db, limiter
from portal.models import OutboundMail
from portal.models.base import utcnow
from portal.models.message import OutboxState

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)
limiter.exempt(bp)

OK = "ok"


@dataclass(frozen=True)
class Check:
    ok: bool
    reason: str = ""

    def text(self) -> str:
        return OK if self.ok else f"failing: {self.reason}"


def database_check(session: Session) -> Check:
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("healthz: database unreachable (%s)", type(exc).__name__)
        return Check(False, "the database does not answer")
    return Check(True)


def blob_dir_check(blob_dir: Path) -> Check:
    try:
        blob_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=blob_dir, prefix=".healthz-") as probe:
            probe.write(b"ok")
            probe.flush()
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        log.warning("healthz: blob directory not writable (%s)", code)
        return Check(False, f"the blob directory cannot be written ({code})")
    return Check(True)


def oldest_due_mail(session: Session, *, now: datetime) -> datetime | None:
    """When the longest-waiting mail still owed fell due (None: nothing is due).

    Owed is pending, or sending with a claim that ran out (its worker died); both on the
    ``(state, next_attempt_at)`` index.
    """
    return session.scalar(
        select(func.min(OutboundMail.next_attempt_at)).where(
            OutboundMail.state.in_([OutboxState.PENDING, OutboxState.SENDING]),
            OutboundMail.next_attempt_at <= now,
        )
    )


def outbox_check(oldest_due: datetime | None, *, now: datetime, max_age: timedelta) -> Check:
    if oldest_due is None or now - oldest_due <= max_age:
        return Check(True)
    minutes = int((now - oldest_due).total_seconds() // 60)
    return Check(
        False,
        f"the oldest due mail has waited {minutes} minutes (limit "
        f"{int(max_age.total_seconds() // 60)}): is a delivery worker (outbox run) running?",
    )


def run_checks(
    session: Session, blob_dir: Path, *, now: datetime, max_age: timedelta
) -> dict[str, Check]:
    checks = {"database": database_check(session), "blob_dir": blob_dir_check(blob_dir)}
    if not checks["database"].ok:
        session.rollback()
        checks["outbox"] = Check(False, "not checked: the database does not answer")
        return checks
    try:
        oldest = oldest_due_mail(session, now=now)
    except SQLAlchemyError as exc:
        session.rollback()
        log.warning("healthz: outbox query failed (%s)", type(exc).__name__)
        checks["outbox"] = Check(False, "the outbox cannot be read")
    else:
        checks["outbox"] = outbox_check(oldest, now=now, max_age=max_age)
    return checks


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    settings = get_settings()
    checks = run_checks(
        db.session, settings.blob_dir, now=utcnow(), max_age=settings.health_mail_max_age
    )
    db.session.rollback()  # end the read transaction now (SQLite WAL: no reader held open)
    healthy = all(check.ok for check in checks.values())
    body = {
        "status": OK if healthy else "failing",
        "checks": {name: check.text() for name, check in checks.items()},
    }
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, 200 if healthy else 503
