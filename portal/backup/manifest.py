"""``manifest.json``: what a backup holds, and the SHA-256 of every file in it.

Written last, atomically, so a directory without one is a backup that did not finish. Restore
reads it first and checks every file against it before writing anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

FORMAT = "office-actions-portal-backup"
FORMAT_VERSION = 1
NAME = "manifest.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_STAGING_KEY = re.compile(r"[0-9a-f]{32}")
_CHUNK = 1 << 20


class ManifestError(ValueError):
    """Not a manifest this version can restore; the message says what is wrong."""


@dataclass(frozen=True)
class DatabaseDump:
    dialect: str  # sqlite | postgresql
    file: str  # relative to the backup directory
    sha256: str
    size: int


@dataclass(frozen=True)
class BlobEntry:
    sha256: str
    size: int

    def relative_path(self) -> str:
        """Where it lives under ``blobs/``: the blob store's own fan-out."""
        return f"{self.sha256[:2]}/{self.sha256[2:4]}/{self.sha256}"


@dataclass(frozen=True)
class StagedEntry:
    """A file a web request staged for a job that had not finished (an appeal's documents)."""

    key: str
    index: int
    sha256: str
    size: int

    def relative_path(self) -> str:
        return f"{self.key}/{self.index}"


@dataclass
class Manifest:
    created_at: str  # ISO 8601, UTC
    app_version: str
    alembic_revision: str | None
    database: DatabaseDump
    blobs: list[BlobEntry] = field(default_factory=list)
    staged: list[StagedEntry] = field(default_factory=list)
    # Referenced by the database but absent (or corrupt) in the store when the backup ran.
    missing_blobs: list[str] = field(default_factory=list)
    # Staged files of a job that finished (and cleared them) while the backup ran.
    missing_staged: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        body = {"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(self)}
        return json.dumps(body, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise ManifestError(f"{NAME} is not JSON ({exc})") from None
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise ManifestError(f"{NAME} is not the manifest of a portal backup")
        if body.get("format_version") != FORMAT_VERSION:
            raise ManifestError(
                f"{NAME} has format version {body.get('format_version')!r}; this portal "
                f"restores version {FORMAT_VERSION}"
            )
        try:
            manifest = cls(
                created_at=str(body["created_at"]),
                app_version=str(body["app_version"]),
                alembic_revision=body.get("alembic_revision"),
                database=DatabaseDump(**body["database"]),
                blobs=[BlobEntry(**entry) for entry in body["blobs"]],
                staged=[StagedEntry(**entry) for entry in body.get("staged", [])],
                missing_blobs=list(body.get("missing_blobs", [])),
                missing_staged=list(body.get("missing_staged", [])),
                counts=dict(body.get("counts", {})),
            )
        except (KeyError, TypeError) as exc:
            raise ManifestError(f"{NAME} is incomplete ({exc})") from None
        manifest.check_names()
        return manifest

    def check_names(self) -> None:
        """Every name in it is a hash or a key, never a path that could walk out of a
        directory (a manifest is input, and may have been edited)."""
        if self.database.dialect not in {"sqlite", "postgresql"}:
            raise ManifestError(f"unknown database dialect {self.database.dialect!r}")
        if "/" in self.database.file or self.database.file.startswith("."):
            raise ManifestError("the database file must be a plain name in the directory")
        for digest in [self.database.sha256, *(blob.sha256 for blob in self.blobs)]:
            if not _SHA256.fullmatch(digest):
                raise ManifestError(f"{digest!r} is not a SHA-256")
        for staged in self.staged:
            if not _STAGING_KEY.fullmatch(staged.key) or not _SHA256.fullmatch(staged.sha256):
                raise ManifestError(f"{staged.key!r} is not a staging key")
            if not isinstance(staged.index, int) or staged.index < 0:
                raise ManifestError(f"{staged.index!r} is not a staged file's index")


def write_atomically(path: Path, text: str) -> None:
    """The whole file under its name, or nothing (and durable before it gets the name)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def file_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, read in chunks (blobs and dumps can be large)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
