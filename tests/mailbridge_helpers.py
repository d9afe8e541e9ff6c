"""Helpers for the mail bridge tests: building mail, delivering it over IMAP, running the CLI.

Plain functions (no fixtures), so each test module states its own fixtures.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import psycopg
from click.testing import Result
from flask.testing import FlaskCliRunner
from sqlalchemy import make_url, select

from mailbridge.cli import cli as mailbridge_cli
from mailbridge.prepare import IncomingMail
from portal.extensions import db
from portal.models import Message
from portal.models.base import utcnow

ROOT = Path(__file__).resolve().parent.parent
FLASK = Path(sys.executable).parent / "flask"


def crlf(raw: bytes) -> bytes:
    """IMAP wants CRLF line ends (RFC 3501 4.3); the stdlib corpus is stored with LF."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def make_mail(
    subject: str,
    *,
    sender: str = "Alice Example <alice@example.org>",
    to: str = "ca@example.org",
    body: str = "Hello, I need help.",
    message_id: str | None = None,
    with_message_id: bool = True,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    headers: dict[str, str] | None = None,
    html: str | None = None,
    attachments: Iterable[tuple[str, str, bytes]] = (),
) -> bytes:
    """A realistic message as bytes with CRLF line ends, ready for IMAP APPEND."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(utcnow())
    if with_message_id:
        msg["Message-ID"] = message_id or f"<{time.monotonic_ns()}.{os.getpid()}@mail.example.net>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return crlf(msg.as_bytes())


def append_all(account: Any, raws: Iterable[bytes], folder: str = "INBOX") -> int:
    """APPEND many messages over one connection (a login per message is slow)."""
    count = 0
    with account.client() as client:
        for raw in raws:
            client.append(folder, raw)
            count += 1
    return count


def sync(runner: FlaskCliRunner, *args: str) -> Result:
    """``flask mailbridge sync --once`` in-process, against the test app."""
    return runner.invoke(mailbridge_cli, ["sync", "--once", *args])


# -- subprocesses ---------------------------------------------------------------------------


def bridge_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a ``flask --app wsgi`` subprocess writing only under ``tmp_path``.

    Tests whose process reaches the database pass its ``PORTAL_DATABASE_URL`` (the test's
    ``database_url``, or a ``new_database``); the SQLite default serves the commands that
    stop before they open it (a refused login, a malformed URL).
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.sqlite3'}",
        "PORTAL_SECRET_KEY": "test-secret-key",
        "PORTAL_BLOB_DIR": str(tmp_path / "blobs"),
        "PORTAL_OUTBOX_DIR": str(tmp_path / "outbox"),
        "PYTHONUNBUFFERED": "1",
        "PORTAL_MAIL_AUTHSERV_ID": "mx.example.org",
    }
    env.update(extra)
    return env


def flask(
    args: Sequence[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``flask --app wsgi ARGS`` to completion from the repository root."""
    return subprocess.run(
        [str(FLASK), "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_flask(args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``flask --app wsgi ARGS`` in the background, output to ``log`` (not a pipe)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(FLASK), "--app", "wsgi", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal the process group and reap it; safe when it already exited."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def db_count(url: str, sql: str = "SELECT count(*) FROM messages") -> int:
    """A count from the database at ``url`` (SQLite or PostgreSQL), read without holding it
    open; 0 while the tables are not created yet."""
    parts = make_url(url)
    if parts.get_backend_name() == "sqlite":
        database = Path(parts.database or "")
        if not database.exists():
            return 0
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
        try:
            return int(connection.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # tables not created yet
        finally:
            connection.close()
    with psycopg.connect(
        host=parts.host,
        port=parts.port,
        user=parts.username,
        password=parts.password,
        dbname=parts.database,
        autocommit=True,
    ) as connection:
        try:
            row = connection.execute(sql).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
        return int(row[0]) if row and row[0] is not None else 0


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def inbound() -> list[Message]:
    """Every inbound message stored, oldest first, read afresh (a sync expunges its rows)."""
    db.session.rollback()
    return list(
        db.session.scalars(
            select(Message).where(Message.direction == "inbound").order_by(Message.id)
        )
    )


def incoming(raws: Iterable[bytes], arrived: datetime, *, first_uid: int = 1) -> list[IncomingMail]:
    """``raws`` as fetched from a folder: consecutive UIDs, one arrival time."""
    return [
        IncomingMail(raw=raw, arrived_at=arrived, size=len(raw), uid=uid)
        for uid, raw in enumerate(raws, start=first_uid)
    ]
