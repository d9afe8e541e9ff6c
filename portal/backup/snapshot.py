"""``backup create DIR`` and ``backup restore DIR``: the database and every blob it names.

A backup directory::

    manifest.json            written last: without it, the backup did not finish
    database.sqlite3         or database.pgdump (pg_dump's custom format)
    blobs/ab/cd/abcd…        every blob the database refers to, fanned out as in the store
    staged/<key>/<index>     files staged for jobs that had not run yet (appeal documents)

Why it is consistent while the portal runs: a blob is written (and made durable) before the
row that names it is committed, and the store never deletes a blob; so every blob named in the
database snapshot is in the store when the snapshot is read, and copying them afterwards
finds them all. Staged files are the exception, removed once their job has run: they are
copied just before the snapshot (those written completely) and again after it, and one whose
job finished in between is listed in the manifest as missing (its job, pending in the copy,
then fails when it runs).

Restore goes into an empty database only, and checks every file against the manifest before
it writes anything.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from sqlalchemy import Engine

from portal.backup import databases, references
from portal.backup.manifest import (
    NAME,
    BlobEntry,
    DatabaseDump,
    Manifest,
    ManifestError,
    StagedEntry,
    file_sha256,
    write_atomically,
)
from portal.storage import BlobStore, fsync_path, sync_filesystem

Report = Callable[[str], None]

_FILE_MODE = 0o640  # as the blob store writes them
_PROGRESS_SECONDS = 2.0
_CHUNK = 1 << 20
_SHOWN_PROBLEMS = 10
# Staged files younger than this may still be being written (see _copy_staging).
_STAGING_SETTLE_SECONDS = 2.0


class BackupError(RuntimeError):
    """The backup or restore cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    blobs: int
    blob_bytes: int
    blobs_present: int  # already in the store, byte for byte
    staged: int


class Progress:
    """One line every few seconds on a long step, so an operator sees it move."""

    def __init__(self, report: Report, label: str, total: int) -> None:
        self.report = report
        self.label = label
        self.total = total
        self.done = 0
        self.bytes = 0
        self._next = time.monotonic() + _PROGRESS_SECONDS

    def advance(self, size: int) -> None:
        self.done += 1
        self.bytes += size
        if time.monotonic() >= self._next and self.done < self.total:
            self._next = time.monotonic() + _PROGRESS_SECONDS
            self.report(f"{self.label} {self.done:,}/{self.total:,} ({megabytes(self.bytes)})")


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB"


def app_version() -> str:
    try:
        return metadata.version("office-actions-portal")
    except metadata.PackageNotFoundError:
        return "unknown"


# -- create ---------------------------------------------------------------------------------


def create_backup(
    *,
    database_url: str,
    engine: Engine,
    blob_dir: Path,
    directory: Path,
    report: Report,
    now: datetime | None = None,
) -> Manifest:
    """Write a backup into ``directory`` (new or empty) and return its manifest.

    Blobs the database names but the store lacks (or holds corrupted) are listed in
    ``missing_blobs``: the backup is still written, and the caller says it is incomplete.
    """
    now = now or datetime.now(UTC)
    dialect = databases.dialect_of(database_url)
    _prepare_directory(directory)
    staging = blob_dir / ".staging"
    staged_copies = directory / "staged"
    _copy_staging(staging, staged_copies, keys=None)

    dump = directory / databases.dump_name(dialect)
    report(f"backup: copying the {dialect} database")
    started = time.monotonic()
    try:
        with databases.snapshot(database_url, engine, dump) as view:
            hashes = references.referenced_blobs(view.query)
            jobs = references.unfinished_staging(view.query)
            counts = references.counts(view.query, view.tables)
            revision = references.alembic_revision(view.query, view.tables)
    except databases.DatabaseBackupError as exc:
        raise BackupError(str(exc)) from exc
    dump_sha, dump_size = file_sha256(dump)
    report(
        f"backup: database copied ({megabytes(dump_size)}, {time.monotonic() - started:.1f} s): "
        + ", ".join(f"{count:,} {table}" for table, count in counts.items())
    )

    blobs, missing = _copy_blobs(hashes, BlobStore(blob_dir), directory / "blobs", report)
    _copy_staging(staging, staged_copies, keys={job.key for job in jobs})
    staged, missing_staged = _keep_staged(jobs, staged_copies)
    _sync(directory)

    manifest = Manifest(
        created_at=now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        app_version=app_version(),
        alembic_revision=revision,
        database=DatabaseDump(dialect, dump.name, dump_sha, dump_size),
        blobs=blobs,
        staged=staged,
        missing_blobs=missing,
        missing_staged=missing_staged,
        counts=counts,
    )
    write_atomically(directory / NAME, manifest.to_json())
    fsync_path(directory)
    return manifest


def _prepare_directory(directory: Path) -> None:
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BackupError(f"{directory} is not an empty directory: a backup goes into a new one")
    # Evidence, addresses and the whole case file: readable by the operator only.
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)


def _copy_blobs(
    hashes: list[str], store: BlobStore, target_root: Path, report: Report
) -> tuple[list[BlobEntry], list[str]]:
    progress = Progress(report, "backup: blobs", len(hashes))
    copied: list[BlobEntry] = []
    missing: list[str] = []
    target = BlobStore(target_root)
    for digest in hashes:
        source = store.path_for(digest)
        try:
            size = _copy_verified(source, target.path_for(digest), digest)
        except FileNotFoundError:
            missing.append(digest)
            continue
        except _HashMismatch:
            missing.append(digest)  # corrupt in the store: not copied, so never restored
            continue
        copied.append(BlobEntry(digest, size))
        progress.advance(size)
    report(f"backup: {len(copied):,} blobs copied ({megabytes(progress.bytes)})")
    return copied, missing


def _copy_staging(staging: Path, target: Path, *, keys: set[str] | None) -> None:
    """Copy staged files: before the snapshot (``keys`` None) those of every folder written a
    while ago; after it, again, every file of ``keys`` still there.

    A web request writes its staged files before it commits the job that names them, but not
    under temporary names: a file being written now may be incomplete. So the first pass
    leaves folders touched in the last :data:`_STAGING_SETTLE_SECONDS` alone, and the second
    copies over the first: by then every folder the snapshot's jobs name was complete. A
    folder cleared in between (its job ran) keeps its first copy, or is reported missing.
    """
    if not staging.is_dir():
        return
    settled = time.time() - _STAGING_SETTLE_SECONDS
    for folder in sorted(staging.iterdir()):
        if keys is not None and folder.name not in keys:
            continue
        try:
            files = sorted(folder.iterdir())
            if keys is None and any(path.stat().st_mtime > settled for path in files):
                continue
        except (FileNotFoundError, NotADirectoryError):
            continue  # its job finished (and cleared it) just now
        for source in files:
            destination = target / folder.name / source.name
            try:
                _copy_verified(source, destination, None)
            except FileNotFoundError:
                continue


def _keep_staged(
    jobs: list[references.StagedFiles], copies: Path
) -> tuple[list[StagedEntry], list[str]]:
    """The staged files the snapshot's jobs need; copies no job of the snapshot needs go."""
    kept: list[StagedEntry] = []
    missing: list[str] = []
    wanted = {job.key for job in jobs}
    for job in jobs:
        for index in range(job.count):
            path = copies / job.key / str(index)
            if path.is_file():
                digest, size = file_sha256(path)
                kept.append(StagedEntry(job.key, index, digest, size))
            else:
                missing.append(f"job #{job.job_id}: {job.key}/{index}")
    if copies.is_dir():
        for folder in copies.iterdir():
            if folder.name not in wanted:
                shutil.rmtree(folder)
        if not any(copies.iterdir()):
            copies.rmdir()
    return kept, missing


# -- restore --------------------------------------------------------------------------------


def restore_backup(
    *, database_url: str, engine: Engine, blob_dir: Path, directory: Path, report: Report
) -> Restored:
    """Check the backup in ``directory`` whole, then restore it into an empty database."""
    manifest = read_manifest(directory)
    dialect = databases.dialect_of(database_url)
    if manifest.database.dialect != dialect:
        raise BackupError(
            f"this backup is of a {manifest.database.dialect} database and cannot be restored "
            f"into {dialect}"
        )
    present = databases.rows_present(engine)
    if present:
        raise BackupError(
            "the database is not empty (rows in "
            + ", ".join(sorted(present))
            + "): restore goes into an empty database only"
        )

    report(f"restore: checking {len(manifest.blobs) + len(manifest.staged) + 1:,} files")
    problems = list(_check_files(directory, manifest, report))
    if problems:
        shown = "; ".join(problems[:_SHOWN_PROBLEMS])
        more = len(problems) - _SHOWN_PROBLEMS
        raise BackupError(
            f"the backup does not match its manifest, nothing was restored: {shown}"
            + (f"; and {more} more" if more > 0 else "")
        )

    report(f"restore: writing the {dialect} database")
    try:
        databases.restore(database_url, engine, directory / manifest.database.file)
    except databases.DatabaseBackupError as exc:
        raise BackupError(str(exc)) from exc

    progress = Progress(report, "restore: blobs", len(manifest.blobs))
    store = BlobStore(blob_dir)
    already = 0
    for blob in manifest.blobs:
        source = directory / "blobs" / blob.relative_path()
        if _put(source, store.path_for(blob.sha256), blob.sha256):
            already += 1
        progress.advance(blob.size)
    staging = blob_dir / ".staging"
    for staged in manifest.staged:
        _put(
            directory / "staged" / staged.relative_path(),
            staging / staged.relative_path(),
            staged.sha256,
        )
    _sync(blob_dir)
    return Restored(
        manifest=manifest,
        blobs=len(manifest.blobs),
        blob_bytes=progress.bytes,
        blobs_present=already,
        staged=len(manifest.staged),
    )


def read_manifest(directory: Path) -> Manifest:
    path = directory / NAME
    if not path.is_file():
        raise BackupError(
            f"{directory} has no {NAME}: it is not a backup, or one that did not finish"
        )
    try:
        return Manifest.from_json(path.read_text(encoding="utf-8"))
    except ManifestError as exc:
        raise BackupError(str(exc)) from exc


def _check_files(directory: Path, manifest: Manifest, report: Report) -> Iterable[str]:
    """Every file against its hash and size; yields what does not match."""
    dump = manifest.database
    yield from _mismatch(directory / dump.file, dump.sha256, dump.size, dump.file)
    progress = Progress(report, "restore: checked", len(manifest.blobs))
    for blob in manifest.blobs:
        name = f"blobs/{blob.relative_path()}"
        yield from _mismatch(directory / name, blob.sha256, blob.size, name)
        progress.advance(blob.size)
    for staged in manifest.staged:
        name = f"staged/{staged.relative_path()}"
        yield from _mismatch(directory / name, staged.sha256, staged.size, name)


def _mismatch(path: Path, sha256: str, size: int, name: str) -> Iterable[str]:
    try:
        found_sha, found_size = file_sha256(path)
    except FileNotFoundError:
        yield f"{name} is missing"
        return
    if found_sha != sha256 or found_size != size:
        yield f"{name} does not match its SHA-256"


def _put(source: Path, destination: Path, sha256: str) -> bool:
    """Copy into place unless an identical file is there; True if it was."""
    if destination.is_file():
        try:
            if file_sha256(destination)[0] == sha256:
                return True
        except OSError:
            pass
    destination.parent.mkdir(parents=True, exist_ok=True)
    _copy_verified(source, destination, sha256)
    return False


# -- files ----------------------------------------------------------------------------------


class _HashMismatch(Exception):
    pass


def _copy_verified(source: Path, destination: Path, sha256: str | None) -> int:
    """Copy through a temporary name, hashing as it goes; the file gets its name only when
    its bytes match ``sha256`` (when given). Returns the size."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_name(f".tmp-{destination.name}-{os.getpid()}")
    digest = hashlib.sha256()
    size = 0
    try:
        with open(source, "rb") as reader, open(tmp, "wb") as writer:
            while chunk := reader.read(_CHUNK):
                digest.update(chunk)
                writer.write(chunk)
                size += len(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise _HashMismatch(sha256)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, destination)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return size


def _sync(root: Path) -> None:
    """Make everything written under ``root`` durable: one syncfs, or an fsync per file."""
    if sync_filesystem(root):
        return
    for folder, _, files in os.walk(root):
        for name in files:
            fsync_path(Path(folder) / name)
        fsync_path(Path(folder))
