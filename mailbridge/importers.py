"""``mailbridge import``: history from an older system, from an ``.eml``, an mbox or a Maildir.

Imported mail goes through the same ingestion as IMAP mail, into the named mailbox's queue,
so threading and de-duplication are shared: the dedup key space is the mailbox's (``ca``),
which means importing an export of mail the bridge already fetched stores nothing twice, and
importing the same file again stores nothing at all. Imported mail has no UID, and gets no
acknowledgement: it is history, and its senders are not waiting for one.

Messages are read one at a time (``mailbox`` keeps only an index of offsets or file names),
so importing a large archive needs no more memory than a large message.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from mailbridge.ingest import Ingestor, Tally
from mailbridge.prepare import IncomingMail
from portal.models.base import utcnow


class ImportSourceError(ValueError):
    """The path is neither an .eml file, an mbox, nor a Maildir."""


def detect(path: Path) -> str:
    """``"maildir"``, ``"mbox"`` or ``"eml"``, by looking at the path rather than its name."""
    if path.is_dir():
        if all((path / sub).is_dir() for sub in ("cur", "new")):
            return "maildir"
        raise ImportSourceError(f"{path} is a directory but not a Maildir (no cur/ and new/)")
    if not path.is_file():
        raise ImportSourceError(f"{path} does not exist")
    with path.open("rb") as handle:
        start = handle.read(5)
    return "mbox" if start == b"From " else "eml"


def read_messages(path: Path) -> Iterator[IncomingMail]:
    """Every message at ``path``, raw bytes as stored, one at a time."""
    kind = detect(path)
    if kind == "eml":
        raw = path.read_bytes()
        yield IncomingMail(raw=raw, arrived_at=_mtime(path), size=len(raw))
    elif kind == "mbox":
        yield from _mbox(path)
    else:
        yield from _maildir(path)


def _mbox(path: Path) -> Iterator[IncomingMail]:
    box = mailbox.mbox(path, create=False)
    try:
        for key in box.iterkeys():
            raw = box.get_bytes(key)
            yield IncomingMail(raw=raw, arrived_at=_mbox_date(box, key), size=len(raw))
    finally:
        box.close()


def _maildir(path: Path) -> Iterator[IncomingMail]:
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in sorted(box.iterkeys()):
        try:
            raw = box.get_bytes(key)
        except KeyError:
            continue  # moved or deleted while we read
        yield IncomingMail(raw=raw, arrived_at=_maildir_date(key), size=len(raw))


def _mbox_date(box: mailbox.mbox, key: str) -> datetime:
    """The delivery date on the ``From `` separator line; now if it is unreadable."""
    try:
        with box.get_file(key, from_=True) as handle:
            line = handle.readline().decode("ascii", "replace").split()
        stamp = " ".join(line[-5:])
        return datetime.strptime(stamp, "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    except (ValueError, OSError, KeyError):
        return utcnow()


def _maildir_date(key: str) -> datetime:
    """Maildir file names start with the delivery time in seconds since the epoch."""
    try:
        return datetime.fromtimestamp(int(key.split(".", 1)[0]), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return utcnow()


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def import_path(path: Path, ingestor: Ingestor, *, batch_size: int = 200) -> Tally:
    """File everything at ``path`` into the ingestor's mailbox, one commit per batch."""
    tally = Tally()
    batch: list[IncomingMail] = []
    for mail in read_messages(path):
        batch.append(mail)
        if len(batch) >= batch_size:
            tally.add(ingestor.ingest_batch(batch))
            batch = []
    if batch:
        tally.add(ingestor.ingest_batch(batch))
    return tally
