"""Synchronising one IMAP folder into the database, so that a kill at any instant loses nothing.

The protocol, per mailbox (after Nylas' sync engine and RFC 3501)::

    SELECT folder (read-only) ──► compare UIDVALIDITY with MailboxState
        │ first time: remember it, cursor 0
        │ changed: raise UidValidityChanged ──► resync: cursor 0, same UIDVALIDITY kept
        │          (dedup by content makes it cheap; more than MAX_RESYNCS an hour: give up)
        ▼ same
    UID SEARCH UID cursor+1:UIDNEXT-1, in windows of ≤5,000 UIDs (memory stays flat)
        ▼
    per batch of ≤200 messages / ≤32 MB (PORTAL_MAIL_FETCH_BATCH):
        UID FETCH (RFC822.SIZE INTERNALDATE)
        UID FETCH BODY.PEEK[]            (larger than the limit: BODY.PEEK[]<offset.1MB>
                                          streamed into the blob store, kept raw, not parsed)
        prepare (store blobs, parse) ── in worker processes, up to PIPELINE_DEPTH batches ahead
        file, in order ──► COMMIT messages + cursor = last UID   ◄── the only commit point
        ▼
    next batch … then back to the caller (``sync --once`` exits, ``run`` waits in IDLE)

Why it is safe: the raw bytes are in the blob store before the commit, the cursor moves only
in the same transaction as the rows it covers, and the unique keys (mailbox, UIDVALIDITY,
UID) and (mailbox, dedup key) refuse a second copy. Killed before a commit, the batch is
fetched again; killed after, the cursor is past it. ``N:*`` is never trusted blindly: it
always returns the highest UID, even one we already have (RFC 3501 6.4.8), so results are
filtered against the cursor.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailbridge import lease
from mailbridge.config import BridgeSettings, MailboxConfig
from mailbridge.errors import BridgeFault, MailboxUnavailable, UidValidityChanged
from mailbridge.imap import FolderInfo, select_readonly
from mailbridge.ingest import Ingestor, Tally
from mailbridge.oversized import HEADER_LIMIT, StoreFailed, stream_to_store
from mailbridge.prepare import IncomingMail
from mailbridge.workers import Ticket
from portal.models import MailboxState
from portal.models.base import utcnow
from portal.services import audit
from portal.storage import BlobStore

log = logging.getLogger(__name__)

MAX_RESYNCS = 3
# Batches being prepared (mailbridge.workers) while the oldest is filed: two keep the workers
# busy while this process files, whatever the order in which each side finishes.
PIPELINE_DEPTH = 2
RESYNC_WINDOW_SECONDS = 3600.0
_META = [b"RFC822.SIZE", b"INTERNALDATE"]
_BODY = b"BODY.PEEK[]"
_HEADER = f"BODY.PEEK[HEADER]<0.{HEADER_LIMIT}>".encode()


@dataclass
class ResyncGuard:
    """Counts UIDVALIDITY resyncs so a server that keeps renumbering cannot loop us forever."""

    max_resyncs: int = MAX_RESYNCS
    window: float = RESYNC_WINDOW_SECONDS
    times: deque[float] = field(default_factory=deque)

    def record(self, mailbox: str) -> None:
        now = time.monotonic()
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()
        if len(self.times) >= self.max_resyncs:
            raise MailboxUnavailable(
                f"{mailbox}: UIDVALIDITY changed {len(self.times) + 1} times within an hour; "
                "not resyncing again until the server is checked"
            )
        self.times.append(now)


def sync_folder(
    client: IMAPClient,
    config: MailboxConfig,
    session: Session,
    ingestor: Ingestor,
    bridge: BridgeSettings,
    guard: ResyncGuard,
    should_stop: Callable[[], bool] = lambda: False,
) -> Tally:
    """Select, check UIDVALIDITY, and file every new message. Returns the counts."""
    folder = select_readonly(client, config)
    _ensure_state(session, config.name, folder)
    lease.take(session, config.name, ingestor.holder, utcnow())  # or MailboxLeased
    try:
        last_uid = _check_uidvalidity(session, config.name, folder)
    except UidValidityChanged as changed:
        guard.record(config.name)
        last_uid = _reset_cursor(session, changed)
    return _fetch_new(client, config, ingestor, folder, last_uid, bridge, should_stop)


def _ensure_state(session: Session, mailbox: str, folder: FolderInfo) -> None:
    """The mailbox's cursor row, created on its first sync (it also carries the lease)."""
    if session.scalars(select(MailboxState.id).where(MailboxState.name == mailbox)).first():
        session.rollback()
        return
    session.add(MailboxState(name=mailbox, uidvalidity=folder.uidvalidity, last_uid=0))
    try:
        session.commit()
    except IntegrityError:  # another bridge created it a moment ago
        session.rollback()


def _check_uidvalidity(session: Session, mailbox: str, folder: FolderInfo) -> int:
    """The cursor to continue from; raises :class:`UidValidityChanged` when it is void."""
    state = session.scalars(select(MailboxState).where(MailboxState.name == mailbox)).one()
    if state.uidvalidity is None:
        state.uidvalidity = folder.uidvalidity
        session.commit()
    if state.uidvalidity != folder.uidvalidity:
        old = int(state.uidvalidity or 0)
        session.rollback()
        raise UidValidityChanged(mailbox, old, folder.uidvalidity)
    last_uid = int(state.last_uid)
    session.commit()
    return last_uid


def _reset_cursor(session: Session, changed: UidValidityChanged) -> int:
    """Start the folder over under its new UIDVALIDITY; de-duplication keeps it from doubling."""
    state = session.scalars(select(MailboxState).where(MailboxState.name == changed.mailbox)).one()
    state.uidvalidity = changed.new
    state.last_uid = 0
    audit.record(
        session,
        actor="mailbridge",
        action="mailbox.resync",
        details={"mailbox": changed.mailbox, "old": changed.old, "new": changed.new},
    )
    session.commit()
    log.warning("%s; re-scanning the folder (already stored mail is recognised)", changed)
    return 0


def _fetch_new(
    client: IMAPClient,
    config: MailboxConfig,
    ingestor: Ingestor,
    folder: FolderInfo,
    last_uid: int,
    bridge: BridgeSettings,
    should_stop: Callable[[], bool],
) -> Tally:
    """Fetch and prepare batches ahead while earlier ones are filed (``PIPELINE_DEPTH`` ahead).

    Preparing a batch stores its blobs and parses it, nothing else; only filing moves the
    cursor, and batches are filed in order. Batches prepared but not filed (on a stop, or a
    failure) are fetched again later.
    """
    tally = Tally()
    waiting: deque[tuple[Ticket, int]] = deque()
    oversized = _Oversized(config.name, BlobStore(ingestor.settings.blob_dir), bridge.max_bytes)
    for mails, cursor in _new_batches(client, folder, last_uid, bridge, oversized):
        waiting.append((ingestor.prepare(mails), cursor))
        if len(waiting) > PIPELINE_DEPTH:
            _file(ingestor, config, folder, *waiting.popleft(), tally)
            if should_stop():
                return tally
    while waiting:
        _file(ingestor, config, folder, *waiting.popleft(), tally)
        if should_stop() and waiting:
            return tally
    return tally


def _file(
    ingestor: Ingestor,
    config: MailboxConfig,
    folder: FolderInfo,
    ticket: Ticket,
    cursor: int,
    tally: Tally,
) -> None:
    batch = ingestor.file_batch(ticket, uidvalidity=folder.uidvalidity, cursor_uid=cursor)
    tally.add(batch)
    log.info("%s: batch up to UID %s: %s", config.name, cursor, batch)


def _new_batches(
    client: IMAPClient,
    folder: FolderInfo,
    last_uid: int,
    bridge: BridgeSettings,
    oversized: _Oversized,
) -> Iterator[tuple[list[IncomingMail], int]]:
    for uids in _new_uid_windows(client, folder, last_uid, bridge.search_window):
        for chunk in _chunks(uids, bridge.batch_size):
            yield from _fetch_batches(client, chunk, bridge, oversized)


def _new_uid_windows(
    client: IMAPClient, folder: FolderInfo, last_uid: int, window: int
) -> Iterator[list[int]]:
    """UIDs above the cursor, in ascending windows so no list grows with the mailbox."""
    low = last_uid + 1
    if folder.uidnext is None:
        # No UIDNEXT: one open-ended search, filtered (``N:*`` includes the highest UID).
        yield sorted(uid for uid in client.search(["UID", f"{low}:*"]) if uid >= low)
        return
    top = folder.uidnext - 1
    while low <= top:
        high = min(low + window - 1, top)
        uids = sorted(uid for uid in client.search(["UID", f"{low}:{high}"]) if low <= uid <= high)
        if uids:
            yield uids
        low = high + 1


def _fetch_batches(
    client: IMAPClient, uids: Sequence[int], bridge: BridgeSettings, oversized: _Oversized
) -> Iterator[tuple[list[IncomingMail], int]]:
    """Batches of fetched mail with the UID the cursor may move to once they are filed."""
    meta = client.fetch(list(uids), _META)
    batch: list[int] = []
    batch_bytes = 0
    for uid in uids:
        if uid not in meta:
            continue  # expunged since the search
        size = int(meta[uid].get(b"RFC822.SIZE") or 0)
        held = size if size <= bridge.max_bytes else HEADER_LIMIT  # oversized: only its header
        if batch and batch_bytes + held > bridge.batch_bytes:
            yield _fetch_bodies(client, batch, meta, bridge, oversized), batch[-1]
            batch, batch_bytes = [], 0
        batch.append(uid)
        batch_bytes += held
    if batch:
        yield _fetch_bodies(client, batch, meta, bridge, oversized), batch[-1]


@dataclass(frozen=True)
class _Oversized:
    """Where mail over ``PORTAL_MAIL_MAX_BYTES`` goes: streamed into the blob store, raw."""

    mailbox: str
    store: BlobStore
    max_bytes: int

    def fetch(
        self, client: IMAPClient, uid: int, size: int, arrived: datetime
    ) -> IncomingMail | None:
        try:
            streamed = stream_to_store(client, uid, size, self.store)
        except StoreFailed as exc:
            raise BridgeFault(f"{self.mailbox}: cannot store mail ({exc})") from exc
        if streamed is None:
            return None
        return IncomingMail(
            raw=None,
            arrived_at=arrived,
            size=streamed.blob.size,
            uid=uid,
            header=streamed.header,
            problem=(
                f"too large to parse: {streamed.blob.size} bytes (limit {self.max_bytes}); "
                "kept raw: download the raw message to read it"
            ),
            raw_sha256=streamed.blob.sha256,
        )


def _fetch_bodies(
    client: IMAPClient,
    uids: Sequence[int],
    meta: dict[int, dict[bytes, Any]],
    bridge: BridgeSettings,
    oversized: _Oversized,
) -> list[IncomingMail]:
    sizes = {uid: int(meta[uid].get(b"RFC822.SIZE") or 0) for uid in uids}
    small = [uid for uid in uids if sizes[uid] <= bridge.max_bytes]
    bodies = client.fetch(small, [_BODY]) if small else {}
    missing = [uid for uid in small if _body(bodies.get(uid)) is None]
    headers = client.fetch(missing, [_HEADER]) if missing else {}
    mails = []
    for uid in uids:
        arrived = _arrival(meta[uid].get(b"INTERNALDATE"))
        if sizes[uid] > bridge.max_bytes:
            mail = oversized.fetch(client, uid, sizes[uid], arrived)
            if mail is not None:
                mails.append(mail)
            continue
        raw = _body(bodies.get(uid))
        if raw is not None:
            mails.append(IncomingMail(raw=raw, arrived_at=arrived, size=len(raw), uid=uid))
            continue
        header = _header(headers.get(uid))
        if header is None:
            log.warning("UID %s vanished between SEARCH and FETCH; skipped", uid)
            continue
        mails.append(
            IncomingMail(
                raw=None,
                arrived_at=arrived,
                size=sizes[uid],
                uid=uid,
                header=header,
                problem=f"the server returned no body for UID {uid}; left on the server",
            )
        )
    return mails


def _body(data: dict[bytes, Any] | None) -> bytes | None:
    value = (data or {}).get(b"BODY[]")
    return bytes(value) if isinstance(value, bytes | bytearray) else None


def _header(data: dict[bytes, Any] | None) -> bytes | None:
    for key, value in (data or {}).items():
        if key.startswith(b"BODY[HEADER]") and isinstance(value, bytes | bytearray):
            return bytes(value)
    return None


def _arrival(value: Any) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)  # not imapclient's own tzinfo, which does not pickle
    return utcnow()


def _chunks(values: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])
