"""Content-addressed blob store: raw mail and attachments, kept by SHA-256 outside the database.

A blob lives at ``<root>/ab/cd/abcd…`` (the first two byte pairs of its hash fan the files out
so that no directory holds millions of entries). Writes go to a temporary file in the same
directory, are fsynced, then renamed into place, so a crash leaves either the whole blob or
nothing, never half a file under a valid name. Storing the same bytes twice is a no-op, which
makes every caller idempotent: the mail bridge can store a message, die before its database
commit, and store it again on the next run.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import secrets
import sys
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Readable by the portal's own group (the web app serves downloads), never by others.
_FILE_MODE = 0o640


class BlobNotFound(LookupError):
    """No blob with that hash is in the store."""


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Blobs under ``root``, addressed by the lower-case hex SHA-256 of their bytes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        """Where the blob with this hash lives; refuses anything that is not a SHA-256.

        The check matters: a hash that came from a URL must never walk out of the store.
        """
        if not _SHA256.fullmatch(sha256):
            raise ValueError("not a lower-case hex SHA-256")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> StoredBlob:
        """Store ``data`` (if it is not there already) and return its hash and size."""
        digest = sha256_hex(data)
        path = self.path_for(digest)
        if path.is_file() and path.stat().st_size == len(data):
            return StoredBlob(digest, len(data))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.chmod(tmp_name, _FILE_MODE)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return StoredBlob(digest, len(data))

    def put_stream(self, chunks: Iterable[bytes]) -> StoredBlob:
        """Store bytes that arrive a chunk at a time (a message too large to hold in memory),
        durable on return. Its hash is known only at the end, so it is written under a
        random temporary name at the store's root first, then renamed to its address."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".tmp-stream-")
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as tmp:
                for chunk in chunks:
                    tmp.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.chmod(tmp_name, _FILE_MODE)
            path = self.path_for(digest.hexdigest())
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, path)  # the same bytes under the same name, if already there
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return StoredBlob(digest.hexdigest(), size)

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        """The blob's bytes (for small blobs and tests; stream big ones with :meth:`path_for`)."""
        try:
            return self.path_for(sha256).read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFound(sha256) from exc


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable: the directory entry is data too (POSIX only)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class BatchBlobStore(BlobStore):
    """A blob store whose writes become durable together, in :meth:`sync`.

    The mail bridge stores every raw message and attachment of a batch, then commits the batch.
    Two fsyncs per blob, one after the other, were half of its time. Here, on Linux, the
    batch's files are written, the file system is flushed once (``syncfs``), the files are
    renamed into place and the file system is flushed again; elsewhere the files are fsynced in
    parallel, renamed and their directories fsynced. Either way the guarantee is the same as
    :meth:`BlobStore.put`: every blob a committed row names is on disk, whole.
    """

    _pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="blob-fsync")

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        # In every temporary name: two writers on one store (two bridges whose containers
        # gave them the same PID, issue 10) must never write, rename or remove each other's.
        self._token = secrets.token_hex(8)
        self._pending: dict[str, tuple[Path, Path]] = {}
        self._directories: set[Path] = set()  # known to exist

    def put(self, data: bytes) -> StoredBlob:
        digest = sha256_hex(data)
        path = self.path_for(digest)
        if digest in self._pending or _has_size(path, len(data)):
            return StoredBlob(digest, len(data))
        if path.parent not in self._directories:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._directories.add(path.parent)
        # Named by hash and this store's random token, not by tempfile (its names cost more
        # than the write).
        tmp_name = path.parent / f".tmp-{digest}-{self._token}"
        try:
            fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
            os.chmod(tmp_name, _FILE_MODE)  # whatever the umask or a leftover's mode
        except BaseException:
            tmp_name.unlink(missing_ok=True)
            raise
        self._pending[digest] = (tmp_name, path)
        return StoredBlob(digest, len(data))

    def sync(self) -> None:
        """Make every pending blob durable: call before committing rows that name them."""
        pending = list(self._pending.values())
        if not pending:
            return
        if _SYNCFS is not None:
            # One flush of the whole file system instead of a few hundred fsyncs: first the
            # files' bytes, then (after the renames) the directory entries.
            _syncfs(self.root)
            for tmp, path in pending:
                os.replace(tmp, path)
            _syncfs(self.root)
            self._pending.clear()
            return
        list(self._pool.map(_fsync_file, [tmp for tmp, _ in pending]))
        for tmp, path in pending:
            os.replace(tmp, path)
        # The renames, and the fan-out directories the batch may have created.
        directories = {path.parent for _, path in pending} | {
            path.parent.parent for _, path in pending
        }
        list(self._pool.map(_fsync_dir, directories))
        self._pending.clear()

    def discard(self) -> None:
        """Forget blobs of a batch that will not be committed."""
        for tmp, _ in self._pending.values():
            tmp.unlink(missing_ok=True)
        self._pending.clear()


def _has_size(path: Path, size: int) -> bool:
    """Whether a complete blob is there already (one stat, not two)."""
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def _load_syncfs() -> Callable[[int], int] | None:
    """Linux's ``syncfs(2)``, which Python's ``os`` module does not offer; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_SYNCFS = _load_syncfs()


def _syncfs(directory: Path) -> None:
    """Flush the file system holding ``directory``; raises OSError as fsync would (Linux
    reports write-back errors from syncfs since 5.8)."""
    if _SYNCFS is None:
        raise RuntimeError("syncfs is not available here")
    fd = os.open(directory, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))
    finally:
        os.close(fd)


def sync_filesystem(directory: Path) -> bool:
    """Flush the whole file system holding ``directory`` at once (Linux ``syncfs``), for
    callers that wrote many files (a backup, a restore); False where it is not available, and
    the caller fsyncs its files one by one instead."""
    if _SYNCFS is None:
        return False
    _syncfs(directory)
    return True


def fsync_path(path: Path) -> None:
    """fsync one file or directory."""
    if path.is_dir():
        _fsync_dir(path)
    else:
        _fsync_file(path)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StagingArea:
    """Files a web request received for work done after it answered (a stored job).

    Kept apart from the blob store, under ``<root>/.staging/<key>/``, because they may never
    become evidence: an appeal filing that matches no case keeps none of its documents. The
    job moves what it keeps into the blob store and discards the rest with :meth:`discard`.
    """

    def __init__(self, blob_root: Path) -> None:
        self.root = Path(blob_root) / ".staging"

    def put(self, files: list[bytes]) -> str:
        """Stage ``files``; returns the key the job carries to find them."""
        key = secrets.token_hex(16)
        directory = self.root / key
        directory.mkdir(parents=True, exist_ok=False)
        for index, data in enumerate(files):
            path = directory / str(index)
            with open(path, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        _fsync_dir(directory)
        return key

    def read(self, key: str, index: int) -> bytes:
        return self._directory(key).joinpath(str(int(index))).read_bytes()

    def discard(self, key: str) -> None:
        directory = self._directory(key)
        if directory.is_dir():
            for path in directory.iterdir():
                path.unlink(missing_ok=True)
            directory.rmdir()

    def _directory(self, key: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{32}", key):
            raise ValueError("not a staging key")
        return self.root / key
