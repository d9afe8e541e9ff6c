"""Writing the audit trail. Every state change in a service calls :func:`record`.

Rows are chained: each stores the hash of the previous row and a hash over its own content
and that previous hash, so editing or deleting a row breaks the chain at that point.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import AuditEvent
from portal.models.base import utcnow


def _digest(
    prev_hash: str | None,
    *,
    case_id: int | None,
    actor: str,
    action: str,
    details: dict[str, Any],
    created_at: datetime,
) -> str:
    payload = json.dumps(
        [prev_hash, case_id, actor, action, details, created_at.isoformat()],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def staff_actor(staff: Any) -> str:
    """How a staff member appears in the trail: by id, never by address."""
    return f"staff:{staff.id}"


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    case_id: int | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """Append an event. ``details`` must hold references and values, never addresses or bodies."""
    details = details or {}
    created_at = (now or utcnow()).replace(microsecond=0)
    prev_hash = session.info.get(_LAST_HASH)
    if prev_hash is None:
        # No autoflush: every event pending in this session came through here and left its
        # hash in session.info, so there is nothing to flush that this SELECT must see.
        with session.no_autoflush:
            prev_hash = session.scalar(
                select(AuditEvent.row_hash).order_by(AuditEvent.id.desc()).limit(1)
            )
    event = AuditEvent(
        case_id=case_id,
        actor=actor,
        action=action,
        details=details,
        created_at=created_at,
        prev_hash=prev_hash,
        row_hash=_digest(
            prev_hash,
            case_id=case_id,
            actor=actor,
            action=action,
            details=details,
            created_at=created_at,
        ),
    )
    session.add(event)
    # Within this transaction the next event chains to this one without asking the database
    # again (the mail bridge writes thousands per batch); forgotten at commit or rollback.
    session.info[_LAST_HASH] = event.row_hash
    return event


_LAST_HASH = "audit.last_row_hash"


@sa_event.listens_for(Session, "after_commit")
@sa_event.listens_for(Session, "after_rollback")
@sa_event.listens_for(Session, "after_soft_rollback")
def _forget_last_hash(session: Session, *args: object) -> None:
    session.info.pop(_LAST_HASH, None)


def broken_links(session: Session) -> Iterator[AuditEvent]:
    """Events whose stored hash or link no longer matches: evidence of tampering."""
    prev_hash: str | None = None
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.id)):
        expected = _digest(
            prev_hash,
            case_id=event.case_id,
            actor=event.actor,
            action=event.action,
            details=event.details,
            created_at=event.created_at,
        )
        if event.prev_hash != prev_hash or event.row_hash != expected:
            yield event
        prev_hash = event.row_hash
