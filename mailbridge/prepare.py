"""Everything done to a message before filing it, none of which needs the database.

For each message of a batch: store the raw bytes (content-addressed), parse them, store the
attachments, and compute what de-duplication compares. The batch's blobs are durable when
:func:`prepare_batch` returns, so the rows that will name them can commit at once.

This is most of the bridge's CPU time (parsing above all), and it does not depend on what is
filed, so ``mailbridge.workers`` runs it in other processes for the next batch while this one
files the current batch. Everything here is plain data that crosses a process boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mailbridge.dedup import Identity
from mailbridge.errors import BridgeFault
from mailbridge.fingerprint import content_fingerprint
from mailbridge.parse import ParsedMail, parse_headers_only, parse_mail
from portal.addresses import canonical_address
from portal.storage import BatchBlobStore, sha256_hex


@dataclass(frozen=True)
class IncomingMail:
    """One message as fetched (or read from a file): raw bytes; or, for a message too large to
    parse, its header and the hash its raw bytes are stored under; or a header alone for a
    placeholder (the server returned no body)."""

    raw: bytes | None
    arrived_at: datetime
    size: int
    uid: int | None = None
    header: bytes | None = None
    problem: str | None = None  # why it is not parsed (too large, not returned)
    # Too large to parse: its bytes were streamed into the blob store already, under this hash.
    raw_sha256: str | None = None


@dataclass(frozen=True)
class StoredAttachment:
    """An attachment whose bytes are in the blob store: what its row records."""

    filename: str
    content_type: str
    sha256: str
    size: int
    inline: bool = False
    content_id: str | None = None


@dataclass
class Prepared:
    """One message ready to file: parsed, its bytes stored, its identity known."""

    uid: int | None
    arrived_at: datetime
    size: int
    parsed: ParsedMail  # with ``attachments`` emptied: their bytes are in the blob store
    identity: Identity
    attachments: list[StoredAttachment] = field(default_factory=list)
    canonical_sender: str | None = None  # worked out here, where CPU is to spare

    def __post_init__(self) -> None:
        if self.parsed.sender and self.canonical_sender is None:
            self.canonical_sender = canonical_address(self.parsed.sender)


def prepare_batch(
    mails: Sequence[IncomingMail],
    *,
    blob_dir: Path,
    mailbox: str,
    authserv_id: str | None = None,
) -> list[Prepared]:
    """Prepare ``mails`` in order; their blobs are durable on return.

    Raises :class:`BridgeFault` when a blob cannot be stored: the batch must not be filed then.
    """
    blobs = BatchBlobStore(blob_dir)
    try:
        prepared = [_prepare(mail, blobs, authserv_id) for mail in mails]
        blobs.sync()
    except OSError as exc:
        raise BridgeFault(f"{mailbox}: cannot store mail ({exc.strerror or exc})") from exc
    finally:
        blobs.discard()  # nothing is pending after a sync; leftovers of a failure
    return prepared


def _prepare(mail: IncomingMail, blobs: BatchBlobStore, authserv_id: str | None) -> Prepared:
    """Raw bytes stored before anything else looks at them; then parsed."""
    if mail.raw is None:
        parsed = parse_headers_only(
            mail.header or b"", arrived_at=mail.arrived_at, authserv_id=authserv_id
        )
        parsed.problems.insert(0, mail.problem or "the server returned no message body")
        header_hash = sha256_hex(mail.header or b"")
        identity = Identity(
            uid=mail.uid,
            raw_sha256=mail.raw_sha256,
            content_sha256=None,
            message_id=parsed.message_id,
            placeholder_key=(
                None if mail.raw_sha256 else f"size:{mail.size}:header-sha256:{header_hash}"
            ),
        )
        return Prepared(mail.uid, mail.arrived_at, mail.size, parsed, identity)
    stored = blobs.put(mail.raw)
    parsed = parse_mail(mail.raw, arrived_at=mail.arrived_at, authserv_id=authserv_id)
    if mail.problem:
        parsed.problems.insert(0, mail.problem)
    attachments = []
    for part in parsed.attachments:
        blob = blobs.put(part.data)
        attachments.append(
            StoredAttachment(
                filename=part.filename,
                content_type=part.content_type,
                sha256=blob.sha256,
                size=blob.size,
                inline=part.inline,
                content_id=part.content_id,
            )
        )
    parsed.attachments = []  # their bytes are stored: no need to carry them further
    identity = Identity(
        uid=mail.uid,
        raw_sha256=stored.sha256,
        content_sha256=content_fingerprint(mail.raw),
        message_id=parsed.message_id,
    )
    return Prepared(mail.uid, mail.arrived_at, mail.size, parsed, identity, attachments)
