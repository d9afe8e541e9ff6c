"""``PORTAL_RATELIMIT_STORAGE_URI=database://``: rate-limit counters in the portal's database.

Flask-Limiter keeps its counters in a ``limits`` storage; its in-memory one counts in each
worker process apart, so several gunicorn workers (or hosts) multiply every limit. Redis is
the usual cure; this storage is the other one, for a deployment that would rather not run
Redis: the database every worker already shares. It supports the fixed-window strategy (the
one the portal uses), one row per window in ``rate_limit_counters``.

A hit is one statement, atomic on both databases we support, so two workers counting the same
client at the same instant never lose a hit::

    INSERT INTO rate_limit_counters (key, count, expires_at) VALUES (:key, :n, :now + :expiry)
    ON CONFLICT (key) DO UPDATE SET
        count      = CASE WHEN expires_at <= :now THEN :n ELSE count + :n END,
        expires_at = CASE WHEN expires_at <= :now THEN :now + :expiry ELSE expires_at END
    RETURNING count

The storage has its own engine (its own connections, so a hit commits at once, whatever the
request's own transaction does), made on first use in each process: a gunicorn worker forked
from a parent that had one never shares the parent's connections. Windows that ran out are
deleted every few minutes by whichever worker notices first.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, cast

from limits.storage import Storage
from sqlalchemy import Engine, Table, case, create_engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from portal.models.ratelimit import RateLimitCounter

SCHEME = "database"
PURGE_EVERY_SECONDS = 300.0

_table = cast(Table, RateLimitCounter.__table__)


def storage_uri(database_url: str) -> str:
    """The URI Flask-Limiter is given for ``database://``: it names the portal's database."""
    return f"{SCHEME}://?" + urllib.parse.urlencode({"url": database_url})


def counter_key(key: str) -> str:
    """Flask-Limiter's keys carry client and appellant addresses; the table keeps a hash."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class DatabaseStorage(Storage):
    """A ``limits`` storage over SQLAlchemy (SQLite 3.35+ or PostgreSQL: UPSERT + RETURNING)."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(
        self,
        uri: str | None = None,
        wrap_exceptions: bool = False,
        *,
        clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlparse(uri or "").query)
        if not query.get("url"):
            raise ValueError("database:// needs the database URL (configure() fills it in)")
        self.database_url = query["url"][0]
        self.clock = clock
        self._engine: Engine | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._next_purge = 0.0
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def _connect(self) -> Engine:
        with self._lock:
            if self._engine is None or self._pid != os.getpid():
                if self._engine is not None:
                    self._engine.dispose(close=False)  # the parent's connections stay its own
                self._engine = create_engine(
                    self.database_url, pool_pre_ping=True, hide_parameters=True
                )
                self._pid = os.getpid()
            return self._engine

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = self.clock()
        engine = self._connect()
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        new_row = insert(_table).values(key=counter_key(key), count=amount, expires_at=now + expiry)
        current = _table.c
        expired = current.expires_at <= now
        statement = new_row.on_conflict_do_update(
            index_elements=[current.key],
            set_={
                "count": case((expired, amount), else_=current.count + amount),
                "expires_at": case((expired, now + expiry), else_=current.expires_at),
            },
        ).returning(current.count)
        with engine.begin() as connection:
            count = connection.execute(statement).scalar_one()
        self._purge_now_and_then(now)
        return int(count)

    def get(self, key: str) -> int:
        current = _table.c
        query = select(current.count).where(
            current.key == counter_key(key), current.expires_at > self.clock()
        )
        with self._connect().connect() as connection:
            return int(connection.execute(query).scalar() or 0)

    def get_expiry(self, key: str) -> float:
        now = self.clock()
        current = _table.c
        query = select(current.expires_at).where(
            current.key == counter_key(key), current.expires_at > now
        )
        with self._connect().connect() as connection:
            return float(connection.execute(query).scalar() or now)

    def check(self) -> bool:
        try:
            with self._connect().connect() as connection:
                connection.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self._connect().begin() as connection:
            return int(connection.execute(delete(_table)).rowcount)

    def clear(self, key: str) -> None:
        with self._connect().begin() as connection:
            connection.execute(delete(_table).where(_table.c.key == counter_key(key)))

    def _purge_now_and_then(self, now: float) -> None:
        """Delete the windows that ran out, at most every few minutes per process."""
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_EVERY_SECONDS
        with self._connect().begin() as connection:
            connection.execute(delete(_table).where(_table.c.expires_at <= now))
