"""A keyed, numbered audit chain: ``seq`` (unique) and HMAC row hashes.

The chain was a plain SHA-256 chain, which anyone who can write to the database can recompute
after an edit. From here on each row's hash is an HMAC keyed with ``PORTAL_AUDIT_KEY`` (kept
outside the database) and covers the row's sequence number, which is unique, so two
transactions appending to the same head cannot both commit.

Existing rows are numbered in id order and re-hashed with the key. Re-hashing would hide a
break the old chain already had (a fork from concurrent writers, or an edit), so the
ids of the rows where the old chain broke are kept in an ``audit.keyed`` event appended at the
end. The old digest is copied here, frozen, rather than imported: code changes, revisions must
not.

Revision ID: 0008_audit_chain
Revises: 0007_search_triggers
Create Date: 2026-12-02 14:00:00

"""

import hashlib
import hmac
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from flask import current_app

import portal.models.base  # noqa: F401  (revisions may use the models' column types)

# revision identifiers, used by Alembic.
revision = "0008_audit_chain"
down_revision = "0007_search_triggers"
branch_labels = None
depends_on = None

_events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer),
    sa.column("seq", sa.BigInteger),
    sa.column("case_id", sa.Integer),
    sa.column("actor", sa.String),
    sa.column("action", sa.String),
    sa.column("details", sa.JSON),
    sa.column("created_at", sa.DateTime),
    sa.column("prev_hash", sa.String),
    sa.column("row_hash", sa.String),
)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _payload(*fields: object) -> bytes:
    return json.dumps(list(fields), sort_keys=True, separators=(",", ":"), default=str).encode()


def _old_digest(prev_hash, row) -> str:  # type: ignore[no-untyped-def]
    created = _aware(row.created_at).isoformat()
    fields = (prev_hash, row.case_id, row.actor, row.action, row.details or {}, created)
    return hashlib.sha256(_payload(*fields)).hexdigest()


def _keyed_digest(key: bytes, seq: int, prev_hash, case_id, actor, action, details, created):  # type: ignore[no-untyped-def]
    payload = _payload(seq, prev_hash, case_id, actor, action, details, _aware(created).isoformat())
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def upgrade():
    op.add_column("audit_events", sa.Column("seq", sa.BigInteger(), nullable=True))

    connection = op.get_bind()
    key: bytes = current_app.extensions["portal.settings"].audit_key
    rows = connection.execute(sa.select(_events).order_by(_events.c.id)).all()
    old_prev: str | None = None
    new_prev: str | None = None
    broken: list[int] = []
    seq = 0
    for row in rows:
        if row.prev_hash != old_prev or row.row_hash != _old_digest(old_prev, row):
            broken.append(row.id)
        old_prev = row.row_hash
        seq += 1
        new_hash = _keyed_digest(
            key, seq, new_prev, row.case_id, row.actor, row.action, row.details or {},
            row.created_at,
        )  # fmt: skip
        connection.execute(
            _events.update()
            .where(_events.c.id == row.id)
            .values(seq=seq, prev_hash=new_prev, row_hash=new_hash)
        )
        new_prev = new_hash
    if rows:
        seq += 1
        details = {"events": len(rows), "unkeyed_chain_broken_at": broken}
        created = datetime.now(UTC).replace(microsecond=0)
        connection.execute(
            _events.insert().values(
                seq=seq,
                case_id=None,
                actor="system",
                action="audit.keyed",
                details=details,
                created_at=created,
                prev_hash=new_prev,
                row_hash=_keyed_digest(
                    key, seq, new_prev, None, "system", "audit.keyed", details, created
                ),
            )
        )

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_events_seq"), ["seq"])


def downgrade():
    # The rows keep their keyed hashes: the old, unkeyed `audit verify` would call them broken.
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_events_seq"), type_="unique")
        batch_op.drop_column("seq")
