"""Engine-level settings that every connection needs, on the databases we support."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """WAL lets the web app read while the mail bridge writes; SQLite leaves FKs off by default.

    Only SQLite connections are touched: the same models run unchanged on PostgreSQL.
    """
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Wait for a writer rather than failing with "database is locked" at once.
        cursor.execute("PRAGMA busy_timeout=10000")
    finally:
        cursor.close()
