"""Writing a batch of new rows fast: ids handed out up front, rows inserted a table at a time.

The mail bridge opens thousands of cases in one transaction. A case's reference is made from
its id, and a reply later in the same batch must find the case by id, so with database-assigned
ids every case (and every message) cost a flush of its own. Worse, SQLite cannot say which
RETURNING row belongs to which INSERT of a multi-row statement, so every row whose id the
database assigns is inserted on its own. With ids handed out up front, the whole batch goes
to the database in one flush, each table in one ``executemany``; :func:`insert_new_rows`
does that flush without the unit of work's per-object bookkeeping.

This is only sound while the transaction holds the database's write lock, as the bridge's
``BEGIN IMMEDIATE`` does on SQLite: no other writer can insert rows until the commit, so
``max(id) + 1`` stays free. While installed, every new row of the session without an id gets
one at flush time, whoever added it (an audit event, an acknowledgement), so the ids handed
out never meet an id the database picked.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

from sqlalchemy import Integer, func, inspect, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

_KEY = "row_ids"


class RowIds:
    """Ids for new rows of one transaction; install with :meth:`install`, one per session."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._next: dict[str, int] = {}

    @classmethod
    def install(cls, session: Session) -> RowIds:
        """Hand out ids in ``session``'s current transaction; forgotten at commit or rollback."""
        ids = cls(session)
        session.info[_KEY] = ids
        return ids

    def take(self, model: Any) -> int:
        """The next free id of ``model``'s table (whose primary key is an integer ``id``)."""
        table = model.__table__
        if table.name not in self._next:
            with self._session.no_autoflush:  # taking an id must not write anything
                stored = self._session.scalar(select(func.max(table.c.id)))
            pending = (
                row.id
                for row in self._session.new
                if getattr(row, "__table__", None) is table and isinstance(row.id, int)
            )
            self._next[table.name] = max(int(stored or 0), *pending, 0) + 1
        value = self._next[table.name]
        self._next[table.name] = value + 1
        return value

    def name_new_rows(self, rows: Any) -> None:
        for row in rows:
            if getattr(row, "id", 0) is None and _has_integer_id(type(row)):
                row.id = self.take(type(row))


def add_with_id(session: Session, row: Any) -> None:
    """Add ``row`` and give it its id: handed out when the transaction holds ids (a batch of
    the mail bridge, see :class:`RowIds`), else from the database by a flush."""
    session.add(row)
    ids = session.info.get(_KEY)
    if ids is not None:
        row.id = ids.take(type(row))
    else:
        session.flush()


def insert_new_rows(session: Session, ids: RowIds) -> None:
    """Insert every row added to ``session`` and not yet flushed, one statement per table.

    What a flush does, without the unit of work's bookkeeping per object (a third of the mail
    bridge's time went there). The rows leave the session: the caller must not use them
    afterwards except to read what it set. Changes to rows already stored are flushed as usual.
    Rows are written with Core, each table in one ``executemany`` with every column given.
    Foreign keys must be checked at commit (SQLite: ``PRAGMA defer_foreign_keys``): the
    tables are written in the order their first new row was added, not in the order of their
    references.
    """
    new = list(session.new)
    ids.name_new_rows(new)
    by_table: dict[Any, list[dict[str, Any]]] = {}
    for row in new:
        session.expunge(row)
        state = inspect(row)
        by_table.setdefault(state.mapper, []).append(_values(state.dict, state.mapper))
    connection = session.connection()
    for mapper, rows in by_table.items():
        # One statement per set of columns given: an executemany takes its columns from the
        # first row, so rows leaving out a different column must not share it. With every
        # column given (see _values) that is one statement per table.
        for _columns, group in itertools.groupby(rows, key=lambda values: tuple(values)):
            connection.execute(mapper.local_table.insert(), list(group))
    session.flush()


_ABSENT = object()


def _values(given: dict[str, Any], mapper: Any) -> dict[str, Any]:
    """Every column's value, defaults applied here: rows with the same keys go in one
    ``executemany``, rows that leave out different columns would each need a statement."""
    values = {}
    for attr in mapper.column_attrs:
        column = attr.columns[0]
        value = given.get(attr.key)
        # As a flush does: None means the column's default, except for a type that stores
        # None as a value of its own (JSON's null).
        if value is None and not (
            attr.key in given and getattr(column.type, "should_evaluate_none", False)
        ):
            value = _default(column)
        if value is not _ABSENT:
            values[column.key] = value
    return values


def _default(column: Any) -> Any:
    """What an INSERT without ``column`` would store, or _ABSENT when only SQL can tell."""
    default = column.default
    if default is not None:
        if default.is_scalar:
            return default.arg
        if default.is_callable:
            return default.arg(None)  # our defaults (utcnow, list, dict) ignore the context
        return _ABSENT
    return _ABSENT if column.server_default is not None else None


@functools.cache
def _has_integer_id(model: type) -> bool:
    key = inspect(model).primary_key
    return len(key) == 1 and key[0].name == "id" and isinstance(key[0].type, Integer)


@sa_event.listens_for(Session, "before_flush")
def _before_flush(session: Session, *args: object) -> None:
    ids = session.info.get(_KEY)
    if ids is not None:
        ids.name_new_rows(list(session.new))


@sa_event.listens_for(Session, "after_transaction_end")
def _end_of_transaction(session: Session, transaction: Any) -> None:
    # Only the outermost transaction: a savepoint's end (which SQLAlchemy 2.1 also reports as
    # a commit or rollback) leaves the write lock, and so the ids, in place.
    if transaction.parent is None:
        session.info.pop(_KEY, None)
