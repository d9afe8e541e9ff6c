"""Case export: one JSON object per case, messages included, for integrators and archives."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal.models import Case


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def case_record(case: Case) -> dict[str, Any]:
    return {
        "reference": case.reference,
        "kind": case.kind,
        "action": case.action,
        "team": case.team,
        "status": case.status,
        "priority": case.priority,
        "created_at": _iso(case.created_at),
        "due_at": _iso(case.due_at),
        "messages": [
            {
                "message_id": message.message_id,
                "from": message.sender,
                "subject": message.subject,
                "date": _iso(message.sent_at or message.created_at),
                "direction": message.direction,
                "channel": message.channel,
            }
            for message in case.messages
        ],
    }


def export_cases(session: Session, batch_size: int = 500) -> Iterator[dict[str, Any]]:
    """Every case in id order, loaded in batches so memory stays flat on a large database."""
    last_id = 0
    while True:
        batch = session.scalars(
            select(Case)
            .where(Case.id > last_id)
            .order_by(Case.id)
            .limit(batch_size)
            .options(selectinload(Case.messages))
        ).all()
        if not batch:
            return
        for case in batch:
            yield case_record(case)
        last_id = batch[-1].id
        session.expunge_all()
