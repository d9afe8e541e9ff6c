"""The plain baseline of issue 3: IMAP fetch + ``email`` parse + one SQLite insert, nothing else.

What a minimal consumer does and no more: log in, SELECT INBOX read-only, UID SEARCH ALL,
UID FETCH BODY.PEEK[] in batches, parse each message with
``email.message_from_bytes(policy=default)``, read the headers a consumer shows (From, Subject,
Date, Message-ID) and the text of ``get_body()``, INSERT one row per message into a fresh
SQLite file, and commit once per batch. No blob store, no threading, no de-duplication.

As a library: ``run_baseline(url, db_path)`` returns a :class:`BaselineResult`. As a script
(this is how ``bench.bench_mailbridge`` runs it, in its own process so its peak memory is its
own) it prints the result as one JSON line::

    MAILBRIDGE_BENCH_URL=imap://user:pass@127.0.0.1:PORT/INBOX \\
        .venv/bin/python -m bench.baseline_ingest --db /tmp/baseline.sqlite3

The URL comes from the environment, not the command line, so the password stays out of ``ps``.
"""

from __future__ import annotations

import argparse
import email
import json
import os
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

from imapclient import IMAPClient

BATCH = 100
URL_ENV = "MAILBRIDGE_BENCH_URL"
_SCHEMA = """
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    uid INTEGER NOT NULL,
    message_id TEXT,
    sender TEXT,
    subject TEXT,
    sent TEXT,
    body TEXT,
    size INTEGER NOT NULL
)
"""


@dataclass
class BaselineResult:
    count: int
    seconds: float  # login to last commit
    fetch_seconds: float
    parse_seconds: float
    db_seconds: float
    bodies: int  # messages whose get_body() gave text

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def _body_text(msg: EmailMessage) -> str | None:
    """What a consumer shows: the preferred text part, decoded (None when there is none)."""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # unknown charset, odd encoding
        return None
    return content if isinstance(content, str) else None


def _row(uid: int, raw: bytes) -> tuple[object, ...]:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    values = []
    for name in ("Message-ID", "From", "Subject", "Date"):
        try:
            header = msg[name]
            values.append(str(header) if header is not None else None)
        except Exception:  # a header the structured parser refuses: a consumer shows nothing
            values.append(None)
    return (uid, *values, _body_text(msg), len(raw))


def run_baseline(url: str, db_path: Path, batch: int = BATCH) -> BaselineResult:
    """Ingest every message of the mailbox at ``url`` into a new SQLite file at ``db_path``."""
    parts = urlsplit(url)
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    db_path.unlink(missing_ok=True)
    database = sqlite3.connect(db_path)
    database.execute(_SCHEMA)
    database.commit()
    fetch = parse = store = 0.0
    count = bodies = 0
    started = time.perf_counter()
    with IMAPClient(parts.hostname, port=parts.port or 143, ssl=False, timeout=60) as client:
        client.login(unquote(parts.username or ""), unquote(parts.password or ""))
        client.select_folder(folder, readonly=True)
        uids = sorted(client.search("ALL"))
        for start in range(0, len(uids), batch):
            mark = time.perf_counter()
            fetched = client.fetch(uids[start : start + batch], [b"BODY.PEEK[]"])
            now = time.perf_counter()
            fetch += now - mark
            rows = [_row(uid, data[b"BODY[]"]) for uid, data in sorted(fetched.items())]
            mark, now = now, time.perf_counter()
            parse += now - mark
            for row in rows:
                database.execute(
                    "INSERT INTO messages (uid, message_id, sender, subject, sent, body, size) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
            database.commit()
            store += time.perf_counter() - now
            count += len(rows)
            bodies += sum(1 for row in rows if row[5] is not None)
    seconds = time.perf_counter() - started
    database.close()
    return BaselineResult(count, seconds, fetch, parse, store, bodies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="SQLite file to create")
    parser.add_argument("--batch", type=int, default=BATCH)
    args = parser.parse_args(argv)
    url = os.environ.get(URL_ENV)
    if not url:
        parser.error(f"set {URL_ENV}=imap://USER:PASS@HOST:PORT/FOLDER")
    result = run_baseline(url, args.db, args.batch)
    print(json.dumps({**asdict(result), "rate": result.rate}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
