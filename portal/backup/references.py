"""What a database snapshot refers to outside itself: blobs, and files staged for jobs.

Read from the snapshot (the SQLite copy, or the PostgreSQL transaction whose snapshot
``pg_dump`` took), never from the live database, so that the blobs copied are exactly those
the restored rows will ask for. Plain SQL that both databases run; the caller passes a
function that runs one statement and returns its rows.

The blob store holds, by SHA-256: every message's raw mail (``messages.raw_sha256``), every
attachment (``attachments.sha256``) and the documents of web appeals (``appeals.attachments``,
a JSON list of ``{filename, content_type, size, sha256}``). A web request that stores a job
stages its files apart (``<blob dir>/.staging/<key>/<index>``, the key in the job's payload)
until the job has run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Query = Callable[[str], list[tuple[Any, ...]]]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_STAGING_KEY = re.compile(r"[0-9a-f]{32}")

BLOB_COLUMNS = (
    "SELECT raw_sha256 FROM messages WHERE raw_sha256 IS NOT NULL "
    "UNION SELECT sha256 FROM attachments"
)
APPEAL_FILES = "SELECT attachments FROM appeals"
UNFINISHED_JOBS = "SELECT id, payload FROM jobs WHERE state <> 'done'"
# Counted for the operator's report, cheap on both databases.
COUNTED = ("cases", "messages", "attachments", "appeals", "audit_events", "outbound_mail")


@dataclass(frozen=True)
class StagedFiles:
    job_id: int
    key: str
    count: int


def _json(value: Any) -> Any:
    """A JSON column: text on SQLite, already parsed on PostgreSQL."""
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value


def appeal_blob_hashes(values: Iterable[Any]) -> set[str]:
    """The hashes in ``appeals.attachments`` values; anything malformed is skipped."""
    found = set()
    for value in values:
        for item in _json(value) or []:
            digest = item.get("sha256") if isinstance(item, dict) else None
            if isinstance(digest, str) and _SHA256.fullmatch(digest):
                found.add(digest)
    return found


def staged_files(rows: Iterable[tuple[Any, Any]]) -> list[StagedFiles]:
    """Jobs not done whose payload names staged files (``staged`` key, ``files`` list)."""
    found = []
    for job_id, payload in rows:
        data = _json(payload) or {}
        key = data.get("staged") if isinstance(data, dict) else None
        if isinstance(key, str) and _STAGING_KEY.fullmatch(key):
            found.append(StagedFiles(int(job_id), key, len(data.get("files") or [])))
    return found


def referenced_blobs(query: Query) -> list[str]:
    """Every blob the snapshot refers to, each once, sorted."""
    hashes = {row[0] for row in query(BLOB_COLUMNS) if row[0] and _SHA256.fullmatch(row[0])}
    hashes |= appeal_blob_hashes(row[0] for row in query(APPEAL_FILES))
    return sorted(hashes)


def unfinished_staging(query: Query) -> list[StagedFiles]:
    return staged_files((row[0], row[1]) for row in query(UNFINISHED_JOBS))


def counts(query: Query, tables: set[str]) -> dict[str, int]:
    return {
        table: int(query(f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608  (fixed names)
        for table in COUNTED
        if table in tables
    }


def alembic_revision(query: Query, tables: set[str]) -> str | None:
    """The schema's revision; None when it was made without Alembic (tests' create_all)."""
    if "alembic_version" not in tables:
        return None
    rows = query("SELECT version_num FROM alembic_version")
    return str(rows[0][0]) if rows else None
