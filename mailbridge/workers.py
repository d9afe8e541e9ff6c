"""Preparing batches in worker processes, so that parsing uses the other cores.

Parsing is most of the bridge's CPU time and Python runs it on one core at a time, so the
next batch is prepared (stored, parsed, fingerprinted: ``mailbridge.prepare``) in worker
processes while this process files the current one. Each batch is split into one chunk per
worker, and the chunks come back in order.

The workers start from a small fork server that has imported only ``mailbridge.prepare``
(no Flask, no database, no open sockets); they share one pool per process, started on the
first batch large enough to be worth it. Small batches, the usual case under IDLE, are
prepared here at once. If a worker dies, the batch is prepared here instead and a fresh pool
is started for the next one: a worker's death never loses a batch. And when the bridge dies,
however it dies, its workers follow it within moments (``mailbridge.lifeline``).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from mailbridge import lifeline
from mailbridge.prepare import IncomingMail, Prepared, prepare_batch

log = logging.getLogger(__name__)

# Below this many messages a batch is prepared in this process: the round trip to a worker
# costs more than it saves, and a lone message under IDLE should not wait for a pool to start.
MIN_PARALLEL = 8

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0


def default_workers() -> int:
    """One worker per core this process may use, at least two so filing overlaps parsing."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(2, min(cores, 8))


@dataclass(frozen=True)
class _Job:
    """Where and how a batch is prepared: sent to a worker with each chunk."""

    blob_dir: Path
    mailbox: str
    authserv_id: str | None

    def __call__(self, mails: Sequence[IncomingMail]) -> list[Prepared]:
        return prepare_batch(
            mails, blob_dir=self.blob_dir, mailbox=self.mailbox, authserv_id=self.authserv_id
        )


@dataclass
class Ticket:
    """A batch being prepared; :meth:`result` waits for it."""

    mails: Sequence[IncomingMail]
    job: _Job
    futures: list[Future[list[Prepared]]]
    done: list[Prepared] | None = None

    def result(self) -> list[Prepared]:
        if self.done is not None:
            return self.done
        try:
            self.done = [item for future in self.futures for item in future.result()]
        except BrokenProcessPool:
            self.done = _here_after_a_death(self.mails, self.job)
        return self.done


def submit(
    mails: Sequence[IncomingMail],
    *,
    blob_dir: Path,
    mailbox: str,
    authserv_id: str | None,
    workers: int,
) -> Ticket:
    """Start preparing ``mails``; with ``workers`` 0 or a small batch, prepare them now."""
    job = _Job(blob_dir, mailbox, authserv_id)
    if workers < 1 or len(mails) < MIN_PARALLEL:
        return Ticket(mails, job, [], done=job(mails))
    size = -(-len(mails) // workers)  # ceiling: one chunk per worker
    try:
        pool = _shared_pool(workers)
        futures = [
            pool.submit(job, list(mails[start : start + size]))
            for start in range(0, len(mails), size)
        ]
    except BrokenProcessPool:  # a worker died since the last batch
        return Ticket(mails, job, [], done=_here_after_a_death(mails, job))
    return Ticket(mails, job, futures)


def _here_after_a_death(mails: Sequence[IncomingMail], job: _Job) -> list[Prepared]:
    log.warning("a mail-preparing worker died; preparing this batch in the main process")
    _discard_pool()  # the next batch gets a fresh pool
    return job(mails)


def _shared_pool(workers: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    with _lock:
        broken = _pool is not None and getattr(_pool, "_broken", False)
        if _pool is None or _pool_size != workers or broken:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["mailbridge.lifeline", "mailbridge.prepare"])
            _pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=context,
                initializer=lifeline.watch,
                initargs=(os.getpid(),),
            )
            _pool_size = workers
        return _pool


def _discard_pool() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None


@atexit.register
def shutdown() -> None:
    """Stop the workers (they hold nothing that needs saving: a batch commits in this process)."""
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=True, cancel_futures=True)
            _pool = None
