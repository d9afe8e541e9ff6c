"""Is a mail-bridge batch one transaction on SQLite? A check for the ``txn`` fix (issue 3).

``mailbridge/ingest.py`` promises that a batch's rows and the mailbox cursor commit together,
and that an infrastructure failure (disk, database) aborts the whole batch. This files a batch
of three corpus messages and makes filing the third fail with ``OSError`` (a full disk, say),
then counts what the database kept: by the protocol, nothing. It runs twice on fresh
databases, as the bridge is and with ``bench.mailbridge_prototype``'s ``txn`` fix::

    .venv/bin/python -m bench.mailbridge_txn_check

Nothing else is changed, and the databases live in a temporary directory that is deleted.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import corpus
from bench.mailbridge_proc import ROOT, bridge_env, flask_cmd

BATCH = 3


def _file_batch_failing_at_the_last(work: Path) -> tuple[int, int, str]:
    """(messages kept, cursor, what ingest_batch raised) after a batch whose last one fails."""
    from mailbridge.cli import _ingestor
    from mailbridge.ingest import IncomingMail, Ingestor
    from portal import create_app
    from portal.extensions import db
    from portal.models import MailboxState

    env = bridge_env(work, "")
    app = create_app(
        {
            "DATABASE_URL": env["PORTAL_DATABASE_URL"],
            "SECRET_KEY": env["PORTAL_SECRET_KEY"],
            "BLOB_DIR": env["PORTAL_BLOB_DIR"],
            "OUTBOX_DIR": env["PORTAL_OUTBOX_DIR"],
            "MAIL_SERVER": "",
            "LOG_LEVEL": "ERROR",
        }
    )
    original = Ingestor._file_new
    calls = {"n": 0}

    def failing(self: Ingestor, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == BATCH:
            raise OSError(28, "No space left on device")
        return original(self, *args, **kwargs)

    raws = list(corpus.generate(BATCH, 7))
    arrived = datetime(2026, 1, 1, tzinfo=UTC)
    mails = [
        IncomingMail(raw=raw, arrived_at=arrived, size=len(raw), uid=uid)
        for uid, raw in enumerate(raws, start=1)
    ]
    raised = "nothing"
    with app.app_context():
        db.session.add(MailboxState(name="ca", uidvalidity=1, last_uid=0))
        db.session.commit()
        ingestor = _ingestor("ca", acknowledge=False)
        Ingestor._file_new = failing  # type: ignore[method-assign]
        try:
            ingestor.ingest_batch(mails, uidvalidity=1, cursor_uid=BATCH)
        except Exception as exc:
            raised = f"{type(exc).__name__}: {exc}"
        finally:
            Ingestor._file_new = original  # type: ignore[method-assign]
            db.session.remove()
            db.engine.dispose()
    database = sqlite3.connect(work / "bridge.sqlite3")
    try:
        kept = database.execute("SELECT count(*) FROM messages").fetchone()[0]
        cursor = database.execute("SELECT last_uid FROM mailbox_states").fetchone()[0]
    finally:
        database.close()
    return int(kept), int(cursor), raised


def _migrated(root: Path, name: str) -> Path:
    work = root / name
    work.mkdir()
    env = bridge_env(work, "")
    done = subprocess.run(
        flask_cmd("db", "upgrade"), cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"flask db upgrade failed:\n{done.stderr[-2000:]}")
    return work


def main() -> int:
    for key in [key for key in os.environ if key.startswith("PORTAL_")]:
        del os.environ[key]
    root = Path(tempfile.mkdtemp(prefix="mailbridge-txn-check-", dir="/tmp"))
    try:
        as_is = _file_batch_failing_at_the_last(_migrated(root, "as-is"))
        from bench import mailbridge_prototype

        mailbridge_prototype.apply(["txn"])
        fixed = _file_batch_failing_at_the_last(_migrated(root, "txn"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"a batch of {BATCH} whose message {BATCH} fails with OSError while being filed:")
    for label, (kept, cursor, raised) in (("bridge as is", as_is), ("with the txn fix", fixed)):
        verdict = "one transaction" if kept == 0 else "NOT one transaction"
        print(f"  {label:17s} raised {raised!r}; rows kept: {kept}, cursor: {cursor} ({verdict})")
    return 0 if fixed[0] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
