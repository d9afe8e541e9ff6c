"""Mail over ``PORTAL_MAIL_MAX_BYTES``: kept raw, byte for byte, but never parsed.

A 300 MB message is evidence like any other, but parsing it (or holding it in memory) could
take the bridge down. So its size comes first (``RFC822.SIZE``, fetched with every batch),
then its bytes in partial fetches, ``BODY.PEEK[]<offset.length>`` a chunk at a time (RFC 3501
6.4.5), written straight into the blob store under their SHA-256. Only its header is read
(who sent it, the subject, the Message-ID: enough to file it on the right case); the row is
flagged "too large to parse" and staff download the raw message to read it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient

from portal.storage import BlobStore, StoredBlob

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024  # per partial fetch: memory stays at about this much per message
HEADER_LIMIT = 65_536  # the most of a message's start we read its header from


@dataclass(frozen=True)
class Streamed:
    """An oversized message now in the blob store, and its header for filing it."""

    blob: StoredBlob
    header: bytes


class StoreFailed(Exception):
    """The blob store could not take the message (disk full, permissions): not the mail's
    fault, nor the connection's."""


class _Vanished(Exception):
    """The server stopped returning the message (expunged meanwhile)."""


class _Lost(Exception):
    """The connection failed during a partial fetch: re-raised as it was, once the
    temporary file is gone, so that it is not taken for a failure of the blob store."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


def stream_to_store(client: IMAPClient, uid: int, size: int, store: BlobStore) -> Streamed | None:
    """Copy message ``uid`` (``size`` bytes, says the server) of the selected folder into
    ``store`` a chunk at a time; None if it vanished meanwhile (nothing is stored then).
    Raises :class:`StoreFailed` when the store cannot take it, and the connection's own
    errors as they are."""
    head = bytearray()

    def chunks() -> Iterator[bytes]:
        offset = 0
        while True:
            chunk = _partial(client, uid, offset)
            if chunk is None:
                if offset == 0 or offset < size:
                    raise _Vanished(uid)
                return  # a server that says NIL rather than "" past the end
            if len(head) < HEADER_LIMIT:
                head.extend(chunk[: HEADER_LIMIT - len(head)])
            yield chunk
            offset += len(chunk)
            if len(chunk) < CHUNK_BYTES:  # the server has no more (RFC 3501 6.4.5)
                return

    try:
        blob = store.put_stream(chunks())
    except _Vanished:
        log.warning("UID %s vanished while it was being fetched; skipped", uid)
        return None
    except _Lost as lost:
        raise lost.error from None
    except OSError as exc:
        raise StoreFailed(exc.strerror or str(exc)) from exc
    return Streamed(blob, header_of(bytes(head)))


def _partial(client: IMAPClient, uid: int, offset: int) -> bytes | None:
    item = f"BODY.PEEK[]<{offset}.{CHUNK_BYTES}>".encode()
    try:
        data: dict[bytes, Any] = client.fetch([uid], [item]).get(uid) or {}
    except OSError as exc:  # reset, timed out, TLS: the connection, not the store
        raise _Lost(exc) from exc
    value = data.get(f"BODY[]<{offset}>".encode())
    if value is None:
        # A server may answer without the origin when it is 0; NIL means no such part.
        value = data.get(b"BODY[]") if offset == 0 else None
    return bytes(value) if isinstance(value, bytes | bytearray) else None


def header_of(start: bytes) -> bytes:
    """The header block at the start of a message: up to the first empty line (CRLF or bare
    LF), or all of ``start`` when the header is longer than that."""
    ends = [end for end in (start.find(b"\r\n\r\n"), start.find(b"\n\n")) if end >= 0]
    return start[: min(ends)] if ends else start
