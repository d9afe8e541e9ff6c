"""Writing and checking the audit trail. Every state change in a service calls :func:`record`.

Rows form one chain: each has a sequence number (1, 2, 3, ...), the hash of the row before it,
and its own hash, an HMAC over its content, its number and that previous hash, keyed with
``PORTAL_AUDIT_KEY``. So:

- editing or deleting a row breaks the chain at that point, and someone who can write to the
  database but does not hold the key (kept outside it) cannot recompute the hashes after;
- deleting the newest rows leaves an intact but shorter chain: ``audit anchor`` prints the
  head as one line to keep elsewhere, and ``audit verify --anchor LINE`` fails when the chain
  is shorter than that anchor or differs from it;
- two writers never fork the chain: a transaction takes the database's write lock before it
  reads the chain head (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-level advisory
  lock), and the unique sequence number makes any fork that slipped past fail at its commit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import AuditEvent
from portal.models.base import utcnow

# pg_advisory_xact_lock key of the chain: any fixed number no other lock of ours uses.
POSTGRESQL_CHAIN_LOCK = 0x0A0D17


def _digest(
    key: bytes,
    prev_hash: str | None,
    *,
    seq: int,
    case_id: int | None,
    actor: str,
    action: str,
    details: dict[str, Any],
    created_at: datetime,
) -> str:
    payload = json.dumps(
        [seq, prev_hash, case_id, actor, action, details, created_at.isoformat()],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def chain_key() -> bytes:
    """The key of the chain, from the app's settings (``PORTAL_AUDIT_KEY``)."""
    key: bytes = current_app.extensions["portal.settings"].audit_key
    return key


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
    head = session.info.get(_HEAD)
    if head is None:
        head = _locked_head(session)
    seq, prev_hash = head[0] + 1, head[1]
    event = AuditEvent(
        seq=seq,
        case_id=case_id,
        actor=actor,
        action=action,
        details=details,
        created_at=created_at,
        prev_hash=prev_hash,
        row_hash=_digest(
            chain_key(),
            prev_hash,
            seq=seq,
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
    session.info[_HEAD] = (seq, event.row_hash)
    return event


_HEAD = "audit.chain_head"


def _locked_head(session: Session) -> tuple[int, str | None]:
    """Take the chain's lock for the rest of this transaction, then read its head.

    Reading first and locking later is how the chain forked under load: two transactions read
    the same head, then both appended to it.
    """
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "sqlite":
        # Python's sqlite3 opens a transaction only before the first write, so until then
        # this transaction holds no lock at all. Once it has written it holds the write lock,
        # and its view of the database is the newest there is.
        dbapi = connection.connection.dbapi_connection
        if dbapi is not None and not dbapi.in_transaction:  # type: ignore[attr-defined]
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({POSTGRESQL_CHAIN_LOCK})")
    # No autoflush: every event pending in this session came through here and left the head
    # in session.info, so there is nothing to flush that this SELECT must see.
    with session.no_autoflush:
        row = session.execute(
            select(AuditEvent.seq, AuditEvent.row_hash).order_by(AuditEvent.seq.desc()).limit(1)
        ).first()
    return (0, None) if row is None else (int(row.seq), row.row_hash)


@sa_event.listens_for(Session, "after_commit")
@sa_event.listens_for(Session, "after_rollback")
@sa_event.listens_for(Session, "after_soft_rollback")
def _forget_head(session: Session, *args: object) -> None:
    session.info.pop(_HEAD, None)


def broken_links(session: Session) -> Iterator[AuditEvent]:
    """Events whose number, link or keyed hash no longer matches: evidence of tampering."""
    key = chain_key()
    prev_hash: str | None = None
    expected_seq = 1
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        expected = _digest(
            key,
            prev_hash,
            seq=event.seq,
            case_id=event.case_id,
            actor=event.actor,
            action=event.action,
            details=event.details,
            created_at=event.created_at,
        )
        if (
            event.seq != expected_seq
            or event.prev_hash != prev_hash
            or not hmac.compare_digest(event.row_hash, expected)
        ):
            yield event
        prev_hash = event.row_hash
        expected_seq = event.seq + 1


# -- anchors: the head, kept outside the database ---------------------------------------------


@dataclass(frozen=True)
class Anchor:
    """The chain's head at one moment: ``audit-anchor seq=42 hash=9f… at=2026-12-02T13:00:00Z``."""

    seq: int
    row_hash: str | None
    at: datetime

    def line(self) -> str:
        at = self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"audit-anchor seq={self.seq} hash={self.row_hash or '-'} at={at}"


_ANCHOR = re.compile(
    r"^audit-anchor seq=(?P<seq>\d+) hash=(?P<hash>[0-9a-f]{64}|-) "
    r"at=(?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$"
)


def parse_anchor(line: str) -> Anchor:
    """An anchor line as :meth:`Anchor.line` prints it; ``ValueError`` for anything else."""
    match = _ANCHOR.match(line.strip())
    if match is None:
        raise ValueError(
            "not an anchor line: expected 'audit-anchor seq=N hash=HEX at=YYYY-MM-DDTHH:MM:SSZ'"
        )
    at = datetime.strptime(match["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    row_hash = None if match["hash"] == "-" else match["hash"]
    return Anchor(seq=int(match["seq"]), row_hash=row_hash, at=at)


def current_anchor(session: Session, *, now: datetime | None = None) -> Anchor:
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.row_hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    if row is None:
        return Anchor(seq=0, row_hash=None, at=now or utcnow())
    return Anchor(seq=int(row.seq), row_hash=row.row_hash, at=now or utcnow())


def anchor_mismatch(session: Session, anchor: Anchor) -> str | None:
    """Why the stored chain does not extend ``anchor``, in one sentence; None when it does."""
    if anchor.seq == 0:
        return None
    head = current_anchor(session)
    if head.seq < anchor.seq:
        return (
            f"the chain ends at event {head.seq}, before its anchor at event {anchor.seq} "
            "(newest events were removed)"
        )
    stored = session.scalar(select(AuditEvent.row_hash).where(AuditEvent.seq == anchor.seq))
    if stored is None or not hmac.compare_digest(stored, anchor.row_hash or ""):
        return f"event {anchor.seq} differs from the anchor"
    return None
