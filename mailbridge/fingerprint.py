"""A content fingerprint: the same message, however it travelled, hashes the same.

The raw SHA-256 changes when a message is delivered twice (new ``Received`` lines), exported to
an mbox by an older system (LF line ends, ``>From`` quoting, ``Status:`` headers) or re-filed
by a server. The fingerprint leaves those out: it hashes the author's headers (sorted, unfolded,
whitespace folded) and the body (line ends normalised, trailing blanks dropped, mbox quoting
undone). Two messages that share a Message-ID but differ here are two messages, and both are
kept; two that agree here are one message stored once.
"""

from __future__ import annotations

import hashlib
import re

# Headers added in transit or by mail stores, not by the author.
TRACE_HEADERS = frozenset(
    {
        b"received",
        b"return-path",
        b"delivered-to",
        b"x-original-to",
        b"envelope-to",
        b"authentication-results",
        b"arc-seal",
        b"arc-message-signature",
        b"arc-authentication-results",
        b"received-spf",
        b"x-received",
        b"x-spam-status",
        b"x-spam-score",
        b"x-spam-level",
        b"x-spam-flag",
        b"x-spam-checker-version",
        b"x-virus-scanned",
        b"status",
        b"x-status",
        b"x-keywords",
        b"x-uid",
        b"content-length",
        b"lines",
        b"x-mozilla-status",
        b"x-mozilla-status2",
        b"x-mozilla-keys",
        b"x-gmail-labels",
        b"x-gm-thrid",
    }
)
_MBOX_QUOTED = re.compile(rb"^>(>*From )", re.MULTILINE)


def content_fingerprint(raw: bytes) -> str:
    """SHA-256 (hex) over the author's headers and the body, as the module docstring says."""
    text = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if text.startswith(b"\n"):
        head, body = b"", text[1:]
    else:
        head, _, body = text.partition(b"\n\n")
    digest = hashlib.sha256()
    for line in sorted(_author_headers(head)):
        digest.update(line + b"\n")
    digest.update(b"\n")
    if body.startswith(b">") or b"\n>" in body:  # the regex is slow; most mail has no quoting
        body = _MBOX_QUOTED.sub(rb"\1", body)
    body_lines = [line.rstrip() for line in body.split(b"\n")]
    digest.update(b"\n".join(body_lines).rstrip(b"\n"))
    return digest.hexdigest()


def _author_headers(head: bytes) -> list[bytes]:
    unfolded: list[bytes] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and unfolded:
            unfolded[-1] += b" " + line.strip()
        else:
            unfolded.append(line)
    kept = []
    for line in unfolded:
        name, colon, value = line.partition(b":")
        name = name.strip().lower()
        # No colon: an mbox "From " separator line, or junk; neither is the author's.
        if not colon or b" " in name or name in TRACE_HEADERS:
            continue
        kept.append(name + b": " + b" ".join(value.split()))
    return kept
