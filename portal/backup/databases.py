"""A consistent copy of the database, and putting one back: SQLite and PostgreSQL.

SQLite: the online backup API (``sqlite3.Connection.backup``) in a single step, which copies
the database as one read transaction saw it; in WAL mode the web workers and the mail bridge
go on writing meanwhile. (In several steps, a write by another connection restarts the
copy, which under steady load may never finish.) The copy is then queried for what it
refers to.

PostgreSQL: a ``REPEATABLE READ`` transaction exports its snapshot (``pg_export_snapshot``),
``pg_dump --format=custom --snapshot=...`` dumps exactly that snapshot, and the same
transaction reads what the dump refers to. ``pg_restore`` puts it back. Both come from the
server's own major version (``/usr/lib/postgresql/N/bin``, else the ``PATH``), since pg_dump
refuses a newer server. The password goes to them in ``PGPASSWORD``, never on a command
line that ``ps`` shows.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import URL, make_url

from portal.backup.references import Query
from portal.models import Base
from portal.production import sqlite_file

PG_BIN_ROOT = Path("/usr/lib/postgresql")
PG_TIMEOUT_SECONDS = 6 * 3600


class DatabaseBackupError(RuntimeError):
    """The database could not be copied or put back; the message says why (no password)."""


@dataclass(frozen=True)
class Snapshot:
    """A consistent view to read from while (or after) the dump is written."""

    query: Query
    tables: set[str]


def dialect_of(database_url: str) -> str:
    name = make_url(database_url).get_backend_name()
    if name not in {"sqlite", "postgresql"}:
        raise DatabaseBackupError(f"backups support SQLite and PostgreSQL, not {name}")
    return name


def dump_name(dialect: str) -> str:
    return "database.sqlite3" if dialect == "sqlite" else "database.pgdump"


@contextmanager
def snapshot(database_url: str, engine: Engine, dump: Path) -> Iterator[Snapshot]:
    """Write the database's consistent copy to ``dump``; yield a view of that same state."""
    if dialect_of(database_url) == "sqlite":
        with _sqlite_snapshot(_sqlite_path(database_url), dump) as view:
            yield view
    else:
        with _postgresql_snapshot(database_url, engine, dump) as view:
            yield view


def rows_present(engine: Engine) -> dict[str, int]:
    """The portal's tables that hold rows (1 each: presence, not a count), for the refusal."""
    existing = set(inspect(engine).get_table_names())
    found = {}
    with engine.connect() as connection:
        for table in sorted(set(Base.metadata.tables) & existing):
            if connection.execute(text(f"SELECT 1 FROM {table} LIMIT 1")).first():  # noqa: S608
                found[table] = 1
    return found


def restore(database_url: str, engine: Engine, dump: Path) -> None:
    """Put the dump into the (empty) database: the caller has checked it is empty."""
    engine.dispose()  # no connection of ours holds the old file or schema
    if dialect_of(database_url) == "sqlite":
        _sqlite_restore(dump, _sqlite_path(database_url))
    else:
        _postgresql_restore(database_url, engine, dump)
    engine.dispose()


# -- SQLite ---------------------------------------------------------------------------------


def _sqlite_path(database_url: str) -> Path:
    path = sqlite_file(database_url)
    if path is None:
        raise DatabaseBackupError("an in-memory SQLite database cannot be backed up")
    return path


def _connect_sqlite(path: Path, mode: str) -> sqlite3.Connection:
    """A connection that never creates the file by accident (``mode=ro`` or ``rw``)."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=30)
    connection.execute("PRAGMA busy_timeout=30000")
    return connection


@contextmanager
def _sqlite_snapshot(source: Path, dump: Path) -> Iterator[Snapshot]:
    if not source.is_file():
        raise DatabaseBackupError(f"no SQLite database at {source}")
    live = _connect_sqlite(source, "rw")
    copy = sqlite3.connect(dump)
    try:
        live.backup(copy)  # pages=-1: one step, one read transaction, a consistent copy
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    except sqlite3.Error as exc:
        raise DatabaseBackupError(f"SQLite backup failed: {exc}") from exc
    finally:
        copy.close()
        live.close()
    view = _connect_sqlite(dump, "ro")
    try:
        tables = {
            row[0] for row in view.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        yield Snapshot(query=lambda sql: view.execute(sql).fetchall(), tables=tables)
    finally:
        view.close()


def _sqlite_restore(dump: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    source = _connect_sqlite(dump, "ro")
    destination = sqlite3.connect(target, timeout=30)
    try:
        source.backup(destination)  # replaces every page, the schema made by `db upgrade` too
        destination.execute("PRAGMA journal_mode=WAL")  # as the app runs it
    except sqlite3.Error as exc:
        raise DatabaseBackupError(f"SQLite restore failed: {exc}") from exc
    finally:
        destination.close()
        source.close()


# -- PostgreSQL -----------------------------------------------------------------------------


def libpq_target(database_url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI for pg_dump/pg_restore, and the environment that carries the password."""
    url: URL = make_url(database_url)
    password = url.password
    plain = url.set(drivername="postgresql", password=None)
    env = {**os.environ}
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return plain.render_as_string(hide_password=False), env


def pg_tool(name: str, server_version_num: int) -> str:
    """``pg_dump`` or ``pg_restore`` of the server's major version (else the one on PATH)."""
    major = server_version_num // 10000
    candidate = PG_BIN_ROOT / str(major) / "bin" / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise DatabaseBackupError(
            f"{name} for PostgreSQL {major} not found: install postgresql-client-{major}"
        )
    return found


def _run(argv: list[str], env: dict[str, str]) -> None:
    try:
        result = subprocess.run(  # noqa: S603  (our own argv: tool path, options, file names)
            argv,
            env=env,
            capture_output=True,
            text=True,
            timeout=PG_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DatabaseBackupError(f"{Path(argv[0]).name} did not run: {exc}") from exc
    if result.returncode != 0:
        raise DatabaseBackupError(
            f"{Path(argv[0]).name} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}"
        )


def _server_version(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SHOW server_version_num")).scalar_one())


@contextmanager
def _postgresql_snapshot(database_url: str, engine: Engine, dump: Path) -> Iterator[Snapshot]:
    tool = pg_tool("pg_dump", _server_version(engine))
    target, env = libpq_target(database_url)
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            exported = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            _run(
                [
                    tool,
                    "--format=custom",
                    f"--snapshot={exported}",
                    "--no-password",
                    "--file",
                    str(dump),
                    "--dbname",
                    target,
                ],
                env,
            )

            def query(sql: str) -> list[tuple[Any, ...]]:
                return [tuple(row) for row in connection.execute(text(sql))]

            tables = {
                row[0]
                for row in query(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                )
            }
            yield Snapshot(query=query, tables=tables)


def _postgresql_restore(database_url: str, engine: Engine, dump: Path) -> None:
    tool = pg_tool("pg_restore", _server_version(engine))
    engine.dispose()
    target, env = libpq_target(database_url)
    _run(
        [
            tool,
            # Tables `db upgrade` may have made (empty: checked) are replaced by the dump's.
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
            "--dbname",
            target,
            str(dump),
        ],
        env,
    )
