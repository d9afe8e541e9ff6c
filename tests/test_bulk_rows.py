"""``portal.services.bulk``: ids handed out up front, and new rows written a table at a time.

The mail bridge files a batch of thousands of rows in one go on SQLite: every new row is named
by :class:`RowIds` (``max(id) + 1`` while the transaction holds the write lock), then
:func:`insert_new_rows` writes each table in one ``executemany``. Both replace work the ORM
would do, so these tests hold them to what the ORM does: ids that never collide, and rows
stored exactly as a normal flush stores them.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from portal.extensions import db
from portal.models import Attachment, AuditEvent, Case, CaseParty, Message, Reporter
from portal.models.case import NO_DUE_DATE
from portal.services import audit
from portal.services.bulk import RowIds, insert_new_rows

# Ids handed out as max(id) + 1 are only sound under SQLite's write lock (BEGIN IMMEDIATE);
# on PostgreSQL the bridge never does it: ids come from the sequences.
pytestmark = pytest.mark.sqlite_only

WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
KEY = "row_ids"  # where RowIds lives in session.info


def begin_immediate(session: Session) -> None:
    """What the bridge does before filing in one go: take SQLite's write lock, and check
    foreign keys at commit (insert_new_rows writes tables in the order rows were added)."""
    connection = session.connection()
    connection.exec_driver_sql("BEGIN IMMEDIATE")
    connection.exec_driver_sql("PRAGMA defer_foreign_keys = ON")


def stored_cases(count: int) -> list[int]:
    """``count`` committed cases, written by a normal flush; their ids."""
    cases = [Case(created_at=WHEN, updated_at=WHEN) for _ in range(count)]
    db.session.add_all(cases)
    db.session.commit()
    return [case.id for case in cases]


# -- RowIds -----------------------------------------------------------------------------------


def test_take_starts_above_stored_rows_and_pending_rows_with_ids(app: Flask) -> None:
    """Ids must be free: above every stored row and above new rows already given an id,
    whoever added them; each table counts on its own."""
    stored = stored_cases(3)
    db.session.add(Case(id=stored[-1] + 5, created_at=WHEN, updated_at=WHEN))  # pending
    ids = RowIds.install(db.session)

    first = ids.take(Case)
    assert first == stored[-1] + 6
    assert ids.take(Case) == first + 1
    assert ids.take(Message) == 1  # an empty table starts at 1
    assert ids.take(Message) == 2
    assert db.session.info[KEY] is ids


def test_take_does_not_flush(app: Flask, inserts: Counter[str]) -> None:
    """Taking an id reads max(id) with autoflush off: it must not write the rows pending in
    the batch, which insert_new_rows writes later in one statement per table."""
    stored_cases(1)
    inserts.clear()
    ids = RowIds.install(db.session)
    db.session.add(Case(id=ids.take(Case), created_at=WHEN, updated_at=WHEN))
    ids.take(Case)
    ids.take(AuditEvent)
    assert sum(inserts.values()) == 0
    assert len(db.session.new) == 1


def test_rows_added_without_an_id_are_named_at_flush(app: Flask) -> None:
    """Other code (an audit event, an acknowledgement) adds rows without an id; the
    before_flush listener names them from the same counter, so a later take never hands out
    an id the database already holds."""
    stored = stored_cases(2)
    ids = RowIds.install(db.session)
    taken = ids.take(Case)
    assert taken == stored[-1] + 1

    other = Case(created_at=WHEN, updated_at=WHEN)  # added by "other code", no id
    db.session.add(other)
    event_before_any_take = audit.record(db.session, actor="system", action="test", now=WHEN)
    db.session.flush()

    assert other.id == taken + 1  # named by RowIds, not by the database
    assert event_before_any_take.id == 1  # first take of audit_events: above max(id) = none
    assert ids.take(Case) == taken + 2
    assert ids.take(AuditEvent) == event_before_any_take.id + 1

    # Once committed, the ids are the ones handed out (the row taken above was never added).
    db.session.commit()
    assert db.session.scalar(select(func.max(Case.id))) == taken + 1


def test_a_take_after_a_flush_reads_the_flushed_rows(app: Flask) -> None:
    """A table first asked for after rows of it were flushed in this transaction (named at
    flush) starts above them: max(id) sees the flushed rows."""
    ids = RowIds.install(db.session)
    db.session.add_all([Reporter(canonical_email=f"r{n}@example.org", email="x") for n in range(3)])
    db.session.flush()
    assert db.session.scalar(select(func.max(Reporter.id))) == 3
    assert ids.take(Reporter) == 4


def test_row_ids_are_forgotten_at_commit(app: Flask) -> None:
    """Ids are only free while this transaction holds the write lock: after the commit
    another writer may take them, so RowIds must not outlive it."""
    RowIds.install(db.session)
    db.session.add(Case(created_at=WHEN, updated_at=WHEN))
    db.session.commit()
    assert KEY not in db.session.info

    # Rows of the next transaction get their ids from the database as usual.
    later = Case(created_at=WHEN, updated_at=WHEN)
    db.session.add(later)
    db.session.flush()
    assert later.id == 2


def test_row_ids_are_forgotten_at_rollback(app: Flask) -> None:
    """Same after a rollback, which also ends the transaction and its lock."""
    stored_cases(1)
    ids = RowIds.install(db.session)
    ids.take(Case)
    db.session.rollback()
    assert KEY not in db.session.info

    # A fresh RowIds starts over from the database: the id taken above was never stored.
    assert RowIds.install(db.session).take(Case) == 2


# -- insert_new_rows ---------------------------------------------------------------------------


def _batch(ids: RowIds, count: int) -> None:
    """What filing ``count`` messages in one go adds: a reporter, case, party, message,
    attachment and audit event each (some named up front, the rest left to RowIds)."""
    for n in range(count):
        reporter = Reporter(
            id=ids.take(Reporter), canonical_email=f"p{n}@example.net", email=f"p{n}@example.net"
        )
        db.session.add(reporter)
        case = Case(id=ids.take(Case), requester_id=reporter.id, created_at=WHEN, updated_at=WHEN)
        case.reference = f"OA-2026-{case.id:06d}"
        db.session.add(case)
        db.session.add(
            CaseParty(case_id=case.id, address=reporter.canonical_email, role="requester")
        )
        audit.record(
            db.session, actor="mailbridge", action="case.opened", case_id=case.id, now=WHEN
        )
        message = Message(
            id=ids.take(Message),
            case_id=case.id,
            direction="inbound",
            channel="mail",
            mailbox="ca",
            dedup_key=f"<{n}@example.net>",
            created_at=WHEN,
        )
        db.session.add(message)
        db.session.add(
            Attachment(
                message_id=message.id,
                filename="a.txt",
                content_type="text/plain",
                size=1,
                sha256="0",
            )
        )


def test_insert_new_rows_writes_each_table_in_one_statement(
    app: Flask, inserts: Counter[str]
) -> None:
    """The point of insert_new_rows: a batch costs one INSERT per table, not one per row,
    and every row (named up front or not) is stored, linked as it was built."""
    stored_cases(2)  # ids do not start at 1
    inserts.clear()
    begin_immediate(db.session)
    ids = RowIds.install(db.session)
    _batch(ids, 5)

    insert_new_rows(db.session, ids)

    assert not db.session.new  # the rows left the session
    assert inserts == {
        "reporters": 1,
        "cases": 1,
        "case_parties": 1,
        "audit_events": 1,
        "messages": 1,
        "attachments": 1,
    }
    db.session.commit()
    assert db.session.scalar(select(func.count(Case.id))) == 7
    for table, count in [
        ("reporters", 5),
        ("case_parties", 5),
        ("audit_events", 5),
        ("messages", 5),
        ("attachments", 5),
    ]:
        assert db.session.scalar(text(f"SELECT count(*) FROM {table}")) == count  # noqa: S608
    joined = db.session.execute(
        select(Case.reference, Reporter.canonical_email, Message.dedup_key, Attachment.id)
        .join(Reporter, Reporter.id == Case.requester_id)
        .join(Message, Message.case_id == Case.id)
        .join(Attachment, Attachment.message_id == Message.id)
        .order_by(Case.id)
    ).all()
    assert [(ref[-6:], email, key) for ref, email, key, _ in joined] == [
        (f"{3 + n:06d}", f"p{n}@example.net", f"<{n}@example.net>") for n in range(5)
    ]
    assert list(audit.broken_links(db.session)) == []  # ids in the order events were chained


def test_insert_new_rows_flushes_changes_to_stored_rows(app: Flask) -> None:
    """Rows already stored and changed in the batch (a reporter seen again) are flushed as
    usual alongside the bulk insert."""
    db.session.add(Reporter(canonical_email="r@example.org", email="old@example.org"))
    db.session.commit()
    begin_immediate(db.session)
    ids = RowIds.install(db.session)
    reporter = db.session.scalars(select(Reporter)).one()
    reporter.email = "new@example.org"
    db.session.add(
        Case(id=ids.take(Case), requester_id=reporter.id, created_at=WHEN, updated_at=WHEN)
    )
    insert_new_rows(db.session, ids)
    db.session.commit()
    assert db.session.scalars(select(Reporter.email)).one() == "new@example.org"
    assert db.session.scalar(select(func.count(Case.id))) == 1


def test_no_column_relies_on_a_server_default_alone(app: Flask) -> None:
    """insert_new_rows leaves out a column whose default only the database knows; rows of
    one executemany that leave out different columns do not mix (Core compiles the INSERT
    from the first row and drops a later row's value for a column the first row left out).
    So every server default must come with a Python default, as the three today do."""
    only_server = [
        f"{table.name}.{column.name}"
        for table in db.metadata.sorted_tables
        for column in table.columns
        if column.server_default is not None and column.default is None
    ]
    assert only_server == []


def _raw_row(table: str, row_id: int) -> dict[str, Any]:
    """The row as stored (SQL values, before any type processing): a JSON ``[]`` and a SQL
    NULL must not look alike."""
    with db.engine.connect() as connection:
        row = connection.exec_driver_sql(
            f"SELECT * FROM {table} WHERE id = ?",  # noqa: S608 (fixed table names)
            (row_id,),
        )
        return dict(row.mappings().one())


# Built twice per model, left mostly to defaults; ``unique`` lists the columns each copy must
# set differently (unique constraints) besides id.
SAMPLES: list[tuple[type[Any], dict[str, Any], set[str]]] = [
    (Case, {"created_at": WHEN, "updated_at": WHEN}, {"reference"}),
    (
        Case,
        {
            "created_at": WHEN,
            "updated_at": WHEN,
            "due_at": WHEN,
            "summary": "s",
            "confidential": True,
        },
        {"reference"},
    ),
    (
        Message,
        {"direction": "inbound", "channel": "mail", "created_at": WHEN, "mailbox": "ca"},
        {"dedup_key"},
    ),
    (
        Message,
        {
            "direction": "inbound",
            "channel": "mail",
            "created_at": WHEN,
            "recipients": ["ca@example.org"],
            "auth_results": {"dmarc": "pass"},
            "quarantined": True,
            "flag_reason": None,
        },
        {"dedup_key"},
    ),
    (
        # An explicit None in a JSON column is JSON null to a flush, not the column's default.
        Message,
        {"direction": "inbound", "channel": "mail", "created_at": WHEN, "recipients": None},
        {"dedup_key"},
    ),
    (AuditEvent, {"actor": "system", "action": "x", "created_at": WHEN, "row_hash": "h"}, {"seq"}),
    (Reporter, {"email": "a@example.org", "created_at": WHEN}, {"canonical_email"}),
    (CaseParty, {"case_id": 1, "role": "requester"}, {"address"}),
    (
        Attachment,
        {"message_id": 1, "filename": "f", "content_type": "text/plain", "size": 3, "sha256": "0"},
        set(),
    ),
]


@pytest.mark.parametrize(
    ("model", "given", "unique"),
    SAMPLES,
    ids=[f"{model.__name__}-{n}" for n, (model, _, _) in enumerate(SAMPLES)],
)
def test_insert_new_rows_stores_what_a_flush_stores(
    app: Flask, model: type[Any], given: dict[str, Any], unique: set[str]
) -> None:
    """Every column is given in the bulk INSERT, so defaults (Case.queue_due_at, JSON lists
    and dicts, booleans) are applied in Python: the stored row must match a flushed one
    column for column, or the bridge's rows would differ from the web app's."""
    anchor_case = Case(id=1, created_at=WHEN, updated_at=WHEN)
    anchor_message = Message(id=1, case_id=1, direction="note", channel="web", created_at=WHEN)
    db.session.add_all([anchor_case, anchor_message])  # for foreign keys
    db.session.commit()

    def build(tag: str) -> Any:
        # Unique values per row: text, or a number for the audit chain's sequence number.
        values = {c: {"flush": 1, "bulk": 2}[tag] if c == "seq" else f"{tag}-{c}" for c in unique}
        return model(**given, **values)

    flushed = build("flush")
    db.session.add(flushed)
    db.session.commit()

    begin_immediate(db.session)
    ids = RowIds.install(db.session)
    bulk = build("bulk")
    db.session.add(bulk)
    insert_new_rows(db.session, ids)
    db.session.commit()
    assert bulk.id is not None
    assert bulk.id != flushed.id

    table = model.__table__.name
    by_flush, by_bulk = _raw_row(table, flushed.id), _raw_row(table, bulk.id)
    for column in {"id", *unique}:
        by_flush.pop(column)
        by_bulk.pop(column)
    assert by_bulk == by_flush
    if model is Case:
        assert by_bulk["queue_due_at"] is not None
        loaded = db.session.get_one(Case, bulk.id)
        assert loaded.queue_due_at == (given.get("due_at") or NO_DUE_DATE)
        assert loaded.evidence_urls == []
        assert loaded.irrevocable is False
