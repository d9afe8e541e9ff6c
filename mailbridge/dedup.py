"""When is a message one we already have? The de-duplication rules, as plain Python.

Within one mailbox, an incoming message is the stored row that has, in this order:

1. the same (UIDVALIDITY, UID): the same server copy, seen again after a crash;
2. the same raw SHA-256: the same bytes, e.g. after a UIDVALIDITY change or a re-import;
3. the same content fingerprint (``mailbridge.fingerprint``): the same mail with other trace
   headers or line ends, e.g. delivered twice, or exported to an mbox by an older system;
4. for a placeholder (the server returned no body to compare): the same Message-ID.

A new row's dedup key is its Message-ID, or ``sha256:<raw hash>`` when it has none, or when a
*different* message already holds that Message-ID: a broken mailer, or someone trying to make
a later message look like a duplicate of theirs. Both messages are kept, and staff are told.
The database's unique constraint on (mailbox, dedup key) is the backstop for all of this.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REUSED_MESSAGE_ID = "its Message-ID was already used by a different message"


@dataclass(frozen=True)
class Identity:
    """What identifies one incoming message, for the rules above."""

    uid: int | None
    raw_sha256: str | None
    content_sha256: str | None
    message_id: str | None
    # For a placeholder: ``size:<n>:header-sha256:<hash>``, the best key without a body.
    placeholder_key: str | None = None

    def candidate_keys(self) -> list[str]:
        """Every dedup key this message could already be stored under."""
        keys = [self.message_id] if self.message_id else []
        if self.raw_sha256:
            keys.append(f"sha256:{self.raw_sha256}")
        elif self.placeholder_key:
            keys.append(self.placeholder_key)
        return keys


@dataclass
class KnownRows:
    """The mailbox's rows a batch could duplicate, indexed by each rule's key.

    Filled from one query per batch, then kept current as the batch adds rows, so that two
    copies of one message in the same batch are also recognised.
    """

    by_uid: dict[tuple[int | None, int], int] = field(default_factory=dict)
    by_sha: dict[str, int] = field(default_factory=dict)
    by_fingerprint: dict[str, int] = field(default_factory=dict)
    by_key: dict[str, int] = field(default_factory=dict)
    location: dict[int, tuple[int | None, int | None]] = field(default_factory=dict)

    def add(
        self,
        row_id: int,
        *,
        uidvalidity: int | None,
        uid: int | None,
        raw_sha256: str | None,
        content_sha256: str | None,
        dedup_key: str | None,
    ) -> None:
        if uid is not None:
            self.by_uid[(uidvalidity, uid)] = row_id
        if raw_sha256:
            self.by_sha.setdefault(raw_sha256, row_id)
        if content_sha256:
            self.by_fingerprint.setdefault(content_sha256, row_id)
        if dedup_key:
            self.by_key.setdefault(dedup_key, row_id)
        self.location[row_id] = (uidvalidity, uid)

    def duplicate_of(self, identity: Identity, uidvalidity: int | None) -> int | None:
        """The id of the row that already holds this message, if any (rules 1 to 4)."""
        if identity.uid is not None and (uidvalidity, identity.uid) in self.by_uid:
            return self.by_uid[(uidvalidity, identity.uid)]
        if identity.raw_sha256 and identity.raw_sha256 in self.by_sha:
            return self.by_sha[identity.raw_sha256]
        if identity.content_sha256 and identity.content_sha256 in self.by_fingerprint:
            return self.by_fingerprint[identity.content_sha256]
        if identity.raw_sha256 is None:
            for key in identity.candidate_keys():
                if key in self.by_key:
                    return self.by_key[key]
        return None

    def dedup_key(self, identity: Identity) -> tuple[str, str | None]:
        """The key for a new row, and a staff flag when its Message-ID was taken already."""
        if identity.message_id and identity.message_id not in self.by_key:
            return identity.message_id, None
        fallback = (
            f"sha256:{identity.raw_sha256}"
            if identity.raw_sha256
            else identity.placeholder_key or f"uid:{identity.uid}"
        )
        return fallback, (REUSED_MESSAGE_ID if identity.message_id else None)

    def moved(self, row_id: int, uidvalidity: int | None, uid: int | None) -> bool:
        """Whether a known row should take this (UIDVALIDITY, UID): it was stored under an
        old UIDVALIDITY or imported without one, and no other row holds the new location."""
        if uid is None or (uidvalidity, uid) in self.by_uid:
            return False
        old_validity, old_uid = self.location.get(row_id, (None, None))
        return old_uid is None or old_validity != uidvalidity

    def relocate(self, row_id: int, uidvalidity: int | None, uid: int) -> None:
        self.by_uid[(uidvalidity, uid)] = row_id
        self.location[row_id] = (uidvalidity, uid)
