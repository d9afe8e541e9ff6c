"""Primary keys handed out before the INSERT, so a batch is written in one statement per table.

The mail bridge opens thousands of cases in one transaction. A case's reference is made from
its id, and a reply later in the same batch must find the case by id, so with database-assigned
ids every case (and every message) cost a flush of its own. Worse, SQLite cannot say which
RETURNING row belongs to which INSERT of a multi-row statement, so every row whose id the
database assigns is inserted on its own. With ids handed out up front, the whole batch goes
to the database in one flush, each table in one ``executemany``.

This is only sound while the transaction holds the database's write lock, as the bridge's
``BEGIN IMMEDIATE`` does on SQLite: no other writer can insert rows until the commit, so
``max(id) + 1`` stays free. While installed, every new row of the session without an id gets
one at flush time, whoever added it (an audit event, an acknowledgement), so the ids handed
out never meet an id the database picked.
"""

from __future__ import annotations

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
            # Outside a flush this SELECT autoflushes first, so pending rows count too.
            current = self._session.scalar(select(func.max(table.c.id)))
            self._next[table.name] = int(current or 0) + 1
        value = self._next[table.name]
        self._next[table.name] = value + 1
        return value

    def name_new_rows(self, rows: Any) -> None:
        for row in rows:
            if getattr(row, "id", 0) is None and _has_integer_id(type(row)):
                row.id = self.take(type(row))


def _has_integer_id(model: type) -> bool:
    key = inspect(model).primary_key
    return len(key) == 1 and key[0].name == "id" and isinstance(key[0].type, Integer)


@sa_event.listens_for(Session, "before_flush")
def _before_flush(session: Session, *args: object) -> None:
    ids = session.info.get(_KEY)
    if ids is not None:
        ids.name_new_rows(list(session.new))


@sa_event.listens_for(Session, "after_commit")
@sa_event.listens_for(Session, "after_rollback")
@sa_event.listens_for(Session, "after_soft_rollback")
def _end_of_transaction(session: Session, *args: object) -> None:
    session.info.pop(_KEY, None)
