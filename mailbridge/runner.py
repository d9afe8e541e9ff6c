"""``mailbridge run``: watch every mailbox until told to stop, surviving server outages.

One thread, one loop, one :class:`Watcher` per mailbox::

    DOWN ──connect──► SYNC ──done──► IDLE (server has IDLE: ≤8 min, re-issued)
     ▲                 ▲              │   or WAIT (no IDLE: poll interval)
     │ backoff         └── new mail ──┘   or deadline
     └──────────── error (server gone, refused, …): 1 s, 2 s, 4 s … 60 s

Between steps the loop waits at most a second (on the IDLE sockets, with ``select``), so
new mail is filed within a second or two and SIGTERM is honoured within a second. A batch
being filed when SIGTERM arrives is finished and committed first: stopping is always clean.
Every ``outbound_every_seconds`` the loop also delivers outbound mail that is due, so
acknowledgements and replies that failed earlier are retried while the bridge runs.
"""

from __future__ import annotations

import logging
import random
import select
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from imapclient import IMAPClient
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from mailbridge.config import BridgeSettings, MailboxConfig
from mailbridge.errors import BridgeFault
from mailbridge.imap import CONNECTION_ERRORS, Idler, close, connect
from mailbridge.ingest import Ingestor
from mailbridge.lease import MailboxLeased
from mailbridge.sync import ResyncGuard, sync_folder
from portal.config import Settings
from portal.services.outbound import deliver_due

log = logging.getLogger(__name__)

_jitter = random.SystemRandom()
# A database that went away is waited for like a mail server that went away.
_FAILURES = (*CONNECTION_ERRORS, ConnectionError, BridgeFault, OperationalError)


class StopFlag:
    """Set by SIGTERM/SIGINT; everything long-running checks it between steps."""

    def __init__(self) -> None:
        self._set = False

    def set(self, *_: object) -> None:
        self._set = True

    def __call__(self) -> bool:
        return self._set


@contextmanager
def stop_on_signals(stop: StopFlag) -> Iterator[None]:
    """Route SIGTERM and SIGINT to ``stop`` while the bridge runs; restore them after."""

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s received: stopping after the current step", signum)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class Watcher:
    """One mailbox's connection, its IDLE state, and its backoff."""

    config: MailboxConfig
    ingestor: Ingestor
    session: Session
    bridge: BridgeSettings
    client: IMAPClient | None = None
    idler: Idler | None = None
    wake: bool = True
    next_check: float = 0.0
    retry_at: float = 0.0
    failures: int = 0
    guard: ResyncGuard = field(default_factory=ResyncGuard)

    def step(self, now: float, should_stop: Callable[[], bool]) -> None:
        """Do whatever is due: connect, leave IDLE, sync, go back to IDLE. Never raises
        for a mailbox problem: it backs off and tries again later."""
        if now < self.retry_at:
            return
        try:
            self._step(now, should_stop)
        except MailboxLeased as exc:
            self._wait_for_lease(exc)
        except _FAILURES as exc:
            self._fail(exc)

    def _step(self, now: float, should_stop: Callable[[], bool]) -> None:
        if self.client is None:
            self.client = connect(self.config, timeout=self.bridge.imap_timeout)
            self.wake = True
            log.info("%s: connected to %s", self.config.name, self.config.where)
        if self.idler is not None and self.idler.active:
            if not self.wake and now < self.next_check:
                return
            self.idler.done()
        elif not self.wake and now < self.next_check:
            return
        tally = sync_folder(
            self.client,
            self.config,
            self.session,
            self.ingestor,
            self.bridge,
            self.guard,
            should_stop,
        )
        if tally.new or tally.already:
            log.info("%s: %s", self.config.name, tally)
        self.wake = False
        self.failures = 0
        if self.client.has_capability("IDLE"):
            self.idler = self.idler or Idler(self.client)
            self.idler.start()
            # Re-issued before servers or middleboxes drop a quiet connection.
            self.next_check = time.monotonic() + min(
                self.bridge.idle_seconds, self.bridge.poll_seconds
            )
        else:
            self.next_check = time.monotonic() + self.bridge.poll_seconds

    def poll_idle(self) -> None:
        """Read what the server said during IDLE (the socket was readable)."""
        if self.idler is None or not self.idler.active:
            return
        try:
            if self.idler.check(0):
                self.wake = True
        except _FAILURES as exc:
            self._fail(exc)

    def socket(self) -> object | None:
        if self.client is None or self.idler is None or not self.idler.active:
            return None
        return self.client.socket()

    def _wait_for_lease(self, exc: MailboxLeased) -> None:
        """Another bridge has the mailbox: look again after a poll interval, quietly."""
        self.session.rollback()
        self.disconnect()
        self.retry_at = time.monotonic() + self.bridge.poll_seconds
        log.info("%s; looking again in %.0f s", exc, self.bridge.poll_seconds)

    def _fail(self, exc: BaseException) -> None:
        self.session.rollback()
        self.disconnect()
        delay = min(self.bridge.reconnect_max_seconds, 2.0**self.failures)
        delay *= _jitter.uniform(0.8, 1.0)
        self.failures += 1
        self.retry_at = time.monotonic() + delay
        # BridgeFault messages name the mailbox already and never hold a password.
        reason = (
            str(exc)
            if isinstance(exc, BridgeFault)
            else f"{self.config.name}: connection problem ({type(exc).__name__})"
        )
        log.warning("%s; retrying in %.1f s", reason, delay)

    def disconnect(self) -> None:
        client, self.client, self.idler = self.client, None, None
        if client is not None:
            close(client)


def run_forever(
    watchers: Sequence[Watcher],
    session: Session,
    settings: Settings,
    bridge: BridgeSettings,
    stop: StopFlag,
) -> None:
    """The loop of the module docstring, until ``stop`` is set."""
    next_outbound = 0.0
    try:
        while not stop():
            for watcher in watchers:
                if stop():
                    break
                watcher.step(time.monotonic(), stop)
            if time.monotonic() >= next_outbound:
                _deliver(session, settings)
                next_outbound = time.monotonic() + bridge.outbound_every_seconds
            session.close()  # no read transaction held open while waiting (SQLite WAL)
            _wait(watchers, stop)
    finally:
        for watcher in watchers:
            if watcher.idler is not None and watcher.idler.active:
                try:
                    watcher.idler.done()
                except Exception as exc:
                    log.debug("%s: IDLE not ended cleanly (%s)", watcher.config.name, exc)
            watcher.disconnect()
        log.info("mail bridge stopped")


def _wait(watchers: Sequence[Watcher], stop: StopFlag, timeout: float = 1.0) -> None:
    """Up to ``timeout`` seconds on the IDLE sockets; marks watchers whose server spoke."""
    if stop():
        return
    sockets = {watcher.socket(): watcher for watcher in watchers}
    sockets.pop(None, None)
    if not sockets:
        time.sleep(timeout)
        return
    try:
        ready, _, _ = select.select(list(sockets), [], [], timeout)
    except (OSError, ValueError):
        ready = list(sockets)
    for sock in ready:
        sockets[sock].poll_idle()


def _deliver(session: Session, settings: Settings) -> None:
    try:
        result = deliver_due(session, settings)
    except Exception:
        session.rollback()
        log.exception("delivering queued mail failed; it stays queued")
        return
    if result.sent or result.failed:
        log.info(
            "outbound mail: %s sent, %s failed, %s still queued",
            result.sent,
            result.failed,
            result.pending,
        )
