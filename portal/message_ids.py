"""Our own Message-IDs, signed so that a reply citing one can be trusted to belong to its case.

``<oa.42.3f9c1a0b7d2e5f60.9a1b2c3d4e5f6a7b8c9d@portal.example.org>`` carries the case id,
a random nonce and an HMAC over (case id, nonce, recipient). When a reply cites it in
In-Reply-To or References, the mail bridge can thread it to case 42 even if the mail client
rewrote the subject, and a forged or altered ID fails the check.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from portal.addresses import canonical_address

_ID = re.compile(r"<?oa\.(\d+)\.([0-9a-f]{16})\.([0-9a-f]{20})@([^>\s]+)>?", re.IGNORECASE)


@dataclass(frozen=True)
class SignedId:
    case_id: int
    nonce: str
    signature: str


def _sign(secret: str, case_id: int, nonce: str, recipient: str) -> str:
    message = f"{case_id}.{nonce}.{canonical_address(recipient)}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:20]


def make_message_id(*, secret: str, case_id: int, recipient: str, domain: str) -> str:
    nonce = secrets.token_hex(8)
    signature = _sign(secret, case_id, nonce, recipient)
    return f"<oa.{case_id}.{nonce}.{signature}@{domain}>"


def parse_message_id(message_id: str) -> SignedId | None:
    match = _ID.fullmatch(message_id.strip())
    if not match:
        return None
    return SignedId(int(match[1]), match[2].lower(), match[3].lower())


def verify_message_id(message_id: str, *, secret: str, recipient: str) -> int | None:
    """The case id if ``message_id`` is one we signed for ``recipient``, else None."""
    signed = parse_message_id(message_id)
    if signed is None:
        return None
    expected = _sign(secret, signed.case_id, signed.nonce, recipient)
    return signed.case_id if hmac.compare_digest(expected, signed.signature) else None
