"""Small pure functions over header values: Message-IDs and addresses.

Each one takes a string (possibly garbage) and returns a value or an empty result; none of them
raises on what a sender wrote. They work on the raw, unfolded header text, so they still work
when ``email``'s structured parser gives up on a header.
"""

from __future__ import annotations

import re

# RFC 5322 msg-id is "<" id-left "@" id-right ">"; the world also sends ids without "@".
_MSG_ID = re.compile(r"<([^<>\s]+)>")
# A pragmatic address: enough to recover the sender from a header the parser refused. Letters
# and digits of any script (\w), since addresses may be internationalised (RFC 6531).
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
MAX_ID_LENGTH = 998  # RFC 5322 line limit; also the column size
MAX_REFERENCES = 100  # a References header longer than this is a loop or an attack


def message_ids(value: str | None) -> list[str]:
    """Every ``<id>`` in a header value, in order, without repeats (In-Reply-To, References)."""
    if not value:
        return []
    # dict.fromkeys: ordered and linear; a list's "not in" made a long header quadratic.
    found = dict.fromkeys(
        msg_id
        for msg_id in (f"<{match.group(1)}>" for match in _MSG_ID.finditer(value))
        if len(msg_id) <= MAX_ID_LENGTH
    )
    return list(found)[-MAX_REFERENCES:]


def message_id(value: str | None) -> str | None:
    """The Message-ID of a message, normalised to ``<left@right>``; None when there is none.

    Tolerates folding inside the brackets and a bare ``left@right`` without brackets, both of
    which real mailers produce.
    """
    if not value:
        return None
    compact = "".join(value.split())
    found = message_ids(compact)
    if found:
        return found[0]
    if "@" in compact and "<" not in compact and ">" not in compact:
        candidate = f"<{compact}>"
        return candidate if len(candidate) <= MAX_ID_LENGTH else None
    return None


def addresses_in(value: str | None) -> list[str]:
    """Addresses found in a header by pattern alone: the fallback for unparseable headers."""
    if not value:
        return []
    return list(dict.fromkeys(match.group(0) for match in _ADDRESS.finditer(value)))
