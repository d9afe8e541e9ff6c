"""E-mail addresses: validated for display and reply, folded to one canonical form per person.

The canonical form is what abuse handling and case parties compare, so that writing as
``Jane.Doe+appeal@GoogleMail.com`` is still ``janedoe@gmail.com``. It is never used to send
mail: replies go to the address the person wrote from.
"""

from __future__ import annotations

import functools

from email_validator import EmailNotValidError, validate_email

__all__ = ["EmailNotValidError", "canonical_address", "normalize_address", "redact"]

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def normalize_address(address: str) -> str:
    """The address as email-validator normalises it (syntax only, never DNS).

    Raises ``EmailNotValidError`` with a message fit to show the person who typed it.
    """
    result = validate_email(address.strip(), check_deliverability=False)
    return result.normalized


@functools.lru_cache(maxsize=4096)
def canonical_address(address: str) -> str:
    """One spelling per mailbox: lower case, no ``+tag``, and Gmail's dots and alias folded.

    Tolerant of addresses that fail validation (mail from the world is often odd): those are
    only trimmed and lower-cased, so they still compare equal to themselves. Remembered for
    the last few thousand addresses: the mail bridge asks about each sender several times.
    """
    try:
        address = normalize_address(address)
    except EmailNotValidError:
        return address.strip().lower()
    local, _, domain = address.rpartition("@")
    local, domain = local.lower(), domain.lower()
    local = local.split("+", 1)[0] or local
    if domain in GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def redact(address: str | None) -> str:
    """For logs: enough to tell two addresses apart in a trace, never enough to identify."""
    if not address or "@" not in address:
        return "<none>"
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"
