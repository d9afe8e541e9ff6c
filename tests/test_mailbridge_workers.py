"""Preparing mail in worker processes (``mailbridge.workers``) and making blobs durable.

Workers only move CPU time elsewhere: what a batch prepared in the forkserver pool gives must
be what ``prepare_batch`` gives in this process, in the same order, with its blobs stored. A
worker that dies must never lose a batch: it is then prepared here. And the blob store's
batched ``sync`` (Linux ``syncfs``, or parallel fsyncs) must leave every blob whole at its
final name before the rows that name it commit.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

import portal.storage
from mailbridge import workers
from mailbridge.prepare import IncomingMail, Prepared, prepare_batch
from portal.storage import BatchBlobStore, BlobStore, sha256_hex
from tests.mailbridge_helpers import crlf, incoming, make_mail

ARRIVED = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)  # fixed: missing Date headers fall back to it
CORPUS = sorted((Path(__file__).parent / "mail").glob("*.eml"))


@pytest.fixture(autouse=True)
def stop_pool() -> Iterator[None]:
    """Every test starts and ends without a shared pool, so none leaks into other tests."""
    workers.shutdown()
    yield
    workers.shutdown()


def mixed_batch() -> list[IncomingMail]:
    """Awkward real-world mail (tests/mail) and generated mail with attachments, plus a
    placeholder for a message too large to fetch: every kind of item a batch can hold."""
    raws = [crlf(path.read_bytes()) for path in CORPUS]
    raws += [
        make_mail(
            f"Evidence {n}",
            sender=f"Person {n} <Person.{n}+tag@GoogleMail.com>",
            message_id=f"<evidence.{n}@example.net>",
            attachments=[
                (f"shot-{n}.png", "image/png", bytes([n]) * (100 + n)),
                ("notes.txt", "text/plain", b"the same bytes in every message"),
            ],
        )
        for n in range(6)
    ]
    mails = incoming(raws, ARRIVED)
    header = b"From: big@example.net\r\nSubject: huge\r\nMessage-ID: <huge@example.net>\r\n\r\n"
    mails.append(
        IncomingMail(
            raw=None,
            arrived_at=ARRIVED,
            size=50_000_000,
            uid=len(mails) + 1,
            header=header,
            problem="too large to fetch",
        )
    )
    return mails


def submit(mails: list[IncomingMail], blob_dir: Path, count: int = 2) -> workers.Ticket:
    return workers.submit(
        mails, blob_dir=blob_dir, mailbox="ca", authserv_id="mx.example.org", workers=count
    )


def in_process(mails: list[IncomingMail], blob_dir: Path) -> list[Prepared]:
    return prepare_batch(mails, blob_dir=blob_dir, mailbox="ca", authserv_id="mx.example.org")


def assert_blobs_stored(
    prepared: list[Prepared], mails: list[IncomingMail], blob_dir: Path
) -> None:
    """Every raw message and attachment the results name is readable in ``blob_dir``."""
    store = BlobStore(blob_dir)
    for item, mail in zip(prepared, mails, strict=True):
        if mail.raw is None:
            assert item.identity.raw_sha256 is None
            continue
        assert store.read(item.identity.raw_sha256 or "") == mail.raw
        for attachment in item.attachments:
            data = store.read(attachment.sha256)
            assert (len(data), sha256_hex(data)) == (attachment.size, attachment.sha256)
    assert not list(blob_dir.rglob(".tmp-*"))


_TAG = re.compile(r'<([a-zA-Z][\w-]*)((?:\s+[^\s=>]+="[^"]*")*)\s*(/?)>')
_ATTRIBUTE = re.compile(r'[^\s=>]+="[^"]*"')


def comparable(item: Prepared) -> Prepared:
    """``item`` with the attributes of each HTML tag in a fixed order.

    ``portal.sanitize`` adds ``class`` and ``target`` to links through nh3, whose order
    varies from one call to the next (a Rust HashMap), in any process: the same markup, but
    not the same string.
    """
    html = item.parsed.body_html
    if html is None:
        return item
    fixed = _TAG.sub(
        lambda tag: f"<{tag[1]} {' '.join(sorted(_ATTRIBUTE.findall(tag[2])))}{tag[3]}>", html
    )
    return replace(item, parsed=replace(item.parsed, body_html=fixed))


def test_workers_give_what_this_process_gives(tmp_path: Path) -> None:
    """A batch prepared in the pool is identical (parse, identity, attachments, canonical
    sender), item for item and in order, to one prepared here; its blobs are durable in the
    blob dir when the result is handed over."""
    mails = mixed_batch()
    assert len(mails) >= workers.MIN_PARALLEL
    ticket = submit(mails, tmp_path / "pool-blobs")
    assert len(ticket.futures) == 2  # one chunk per worker: it really went to the pool
    assert ticket.done is None

    pooled = ticket.result()
    expected = in_process(mails, tmp_path / "local-blobs")

    assert [item.uid for item in pooled] == [mail.uid for mail in mails]
    for got, want in zip(map(comparable, pooled), map(comparable, expected), strict=True):
        assert got.parsed == want.parsed
        assert got.identity == want.identity
        assert got.attachments == want.attachments
        assert got.canonical_sender == want.canonical_sender
        assert got == want
    assert sum(len(item.attachments) for item in pooled) >= 12
    assert pooled[-1].parsed.problems[0] == "too large to fetch"
    assert_blobs_stored(pooled, mails, tmp_path / "pool-blobs")
    assert ticket.result() is pooled  # asked twice, prepared once


def test_small_batches_and_zero_workers_stay_in_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone message under IDLE must not wait for a pool to start: below MIN_PARALLEL (or
    with workers=0) the batch is prepared at once, here, and no pool is ever created."""

    def no_pool(count: int) -> None:
        raise AssertionError("a pool was asked for")

    monkeypatch.setattr(workers, "_shared_pool", no_pool)
    small = incoming([make_mail(f"Small {n}") for n in range(workers.MIN_PARALLEL - 1)], ARRIVED)
    ticket = submit(small, tmp_path / "blobs")
    assert ticket.futures == []
    assert ticket.done is not None
    assert ticket.result() == in_process(small, tmp_path / "again")
    assert_blobs_stored(ticket.result(), small, tmp_path / "blobs")

    large = incoming([make_mail(f"Large {n}") for n in range(workers.MIN_PARALLEL + 2)], ARRIVED)
    ticket = submit(large, tmp_path / "blobs", count=0)
    assert ticket.futures == []
    assert ticket.done is not None
    assert workers._pool is None


def _kill_workers(pool: object) -> None:
    """SIGKILL every worker process of ``pool`` (as the OOM killer would)."""
    processes = list(pool._processes.values())  # type: ignore[attr-defined]
    assert processes
    for process in processes:
        os.kill(process.pid, signal.SIGKILL)


def test_a_worker_killed_mid_batch_does_not_lose_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The batch is prepared here instead (with a warning), and the next batch gets a fresh
    pool. Deterministic: both workers are first kept busy sleeping, so the batch's chunks
    are still queued when the workers die."""
    mails = incoming(
        [make_mail(f"Doomed {n}", sender=f"d{n}@example.net") for n in range(10)], ARRIVED
    )
    pool = workers._shared_pool(2)
    sleepers = [pool.submit(time.sleep, 60) for _ in range(2)]
    ticket = submit(mails, tmp_path / "blobs")
    assert len(ticket.futures) == 2
    _kill_workers(pool)
    wait([*sleepers, *ticket.futures], timeout=30)
    assert all(isinstance(f.exception(), BrokenProcessPool) for f in ticket.futures)

    with caplog.at_level(logging.WARNING, logger="mailbridge.workers"):
        prepared = ticket.result()

    assert prepared == in_process(mails, tmp_path / "local")
    assert_blobs_stored(prepared, mails, tmp_path / "blobs")
    assert "worker died" in caplog.text
    assert workers._pool is None  # the broken pool was let go

    following = submit(mails, tmp_path / "blobs")
    assert len(following.futures) == 2
    assert workers._pool is not pool
    assert following.result() == prepared


def test_a_worker_killed_between_batches_does_not_lose_the_next(tmp_path: Path) -> None:
    """Workers can die while idle too (OOM killer between batches); the module promises a
    worker's death never loses a batch, so the next submit must still prepare it."""
    mails = incoming(
        [make_mail(f"Idle {n}", sender=f"i{n}@example.net") for n in range(10)], ARRIVED
    )
    expected = submit(mails, tmp_path / "blobs").result()
    pool = workers._shared_pool(2)
    _kill_workers(pool)
    deadline = time.monotonic() + 10
    while not pool._broken and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.01)
    assert pool._broken  # type: ignore[attr-defined]

    assert submit(mails, tmp_path / "blobs").result() == expected


# -- BatchBlobStore.sync ------------------------------------------------------------------------


@pytest.fixture(params=["syncfs", "fsync"])
def sync_calls(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run the test with Linux syncfs, and with the portable fallback (``_SYNCFS`` None),
    recording which calls were made so each test knows the path it exercised."""
    calls: list[str] = [f"mode={request.param}"]
    if request.param == "syncfs":
        real = portal.storage._SYNCFS
        if real is None:
            pytest.skip("syncfs is not available on this platform")

        def syncfs(fd: int) -> int:
            calls.append("syncfs")
            return real(fd)

        monkeypatch.setattr(portal.storage, "_SYNCFS", syncfs)
    else:
        real_fsync = portal.storage._fsync_file

        def fsync_file(path: Path) -> None:
            calls.append(f"fsync {Path(path).name}")
            real_fsync(path)

        monkeypatch.setattr(portal.storage, "_SYNCFS", None)
        monkeypatch.setattr(portal.storage, "_fsync_file", fsync_file)
    return calls


def test_sync_leaves_every_blob_whole_at_its_final_name(
    tmp_path: Path, sync_calls: list[str]
) -> None:
    """Before sync, a batch's blobs exist only as temporary files; after it, each is at its
    content address with its bytes and the store's file mode, and no temporary file is left.
    A blob put twice, or already stored, is written once."""
    root = tmp_path / "blobs"
    BlobStore(root).put(b"stored before the batch")
    blobs = [f"blob {n}".encode() * (n + 1) for n in range(40)] + [b"", b"\x00" * 70_000]
    store = BatchBlobStore(root)
    for data in [*blobs, blobs[0], b"stored before the batch"]:
        stored = store.put(data)
        assert (stored.sha256, stored.size) == (sha256_hex(data), len(data))
    temporary = list(root.rglob(".tmp-*"))
    assert len(temporary) == len(blobs)
    assert not any(store.exists(sha256_hex(data)) for data in blobs)

    store.sync()

    if sync_calls[0] == "mode=syncfs":
        assert sync_calls.count("syncfs") == 2  # the bytes, then the renames
    else:
        assert len([c for c in sync_calls if c.startswith("fsync ")]) == len(blobs)
    for data in [*blobs, b"stored before the batch"]:
        path = store.path_for(sha256_hex(data))
        assert path.read_bytes() == data
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not list(root.rglob(".tmp-*"))
    store.sync()  # nothing pending: a no-op
    store.discard()  # after a sync, discarding must not remove stored blobs
    assert all(BlobStore(root).read(sha256_hex(data)) == data for data in blobs)


def test_discard_removes_the_temporary_files_of_a_batch_never_synced(tmp_path: Path) -> None:
    """A batch that fails before its sync leaves no blob under a valid name and no
    temporary file behind."""
    store = BatchBlobStore(tmp_path / "blobs")
    digests = [store.put(f"unsynced {n}".encode()).sha256 for n in range(5)]
    store.discard()
    assert not any(store.exists(digest) for digest in digests)
    assert not list((tmp_path / "blobs").rglob(".tmp-*"))


# A blob writer that says it has PID 4242 (its container says so): it stores the blob it is
# given, then makes it durable when told (a line on its standard input).
_WRITER = """
import os, sys
from pathlib import Path
os.getpid = lambda: 4242
from portal.storage import BatchBlobStore
store = BatchBlobStore(Path(sys.argv[1]))
store.put(sys.argv[2].encode())
print("put", flush=True)
sys.stdin.readline()
store.sync()
print("synced", flush=True)
"""


def test_two_writers_with_the_same_pid_never_share_a_temporary_file(tmp_path: Path) -> None:
    """Issue 10: two bridges in containers with the same PID, on one blob store, failed on
    colliding temporary names (``.tmp-<sha>-<pid>``). Here both store the same message at
    the same moment: the second overwrites the first's temporary file before either renames."""
    root = tmp_path / "blobs"
    data = "Subject: the same message, fetched by two bridges\r\n\r\nHello\r\n"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(root), data],
            cwd=Path(__file__).parent.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for writer in writers:  # one after the other: both temporary files written first
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "put"
        results = [writer.communicate("\n", timeout=30) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()

    for writer, (out, err) in zip(writers, results, strict=True):
        assert (writer.returncode, out.strip()) == (0, "synced"), err
    assert BlobStore(root).read(sha256_hex(data.encode())) == data.encode()
    assert not list(root.rglob(".tmp-*"))
