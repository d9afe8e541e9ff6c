"""E-mail addresses: validated for display and reply, folded to one canonical form per person.

The canonical form is what abuse handling and case parties compare, so that writing as
``Jane.Doe+appeal@GoogleMail.com`` is still ``janedoe@gmail.com``. It is never used to send
mail: replies go to the address the person wrote from.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

__all__ = [
    "EmailNotValidError",
    "canonical_address",
    "normalize_address",
    "redact",
    "remember_canonical",
]

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def normalize_address(address: str) -> str:
    """The address as email-validator normalises it (syntax only, never DNS).

    Raises ``EmailNotValidError`` with a message fit to show the person who typed it.
    """
    result = validate_email(address.strip(), check_deliverability=False)
    return result.normalized


def canonical_address(address: str) -> str:
    """One spelling per mailbox: lower case, no ``+tag``, and Gmail's dots and alias folded.

    Tolerant of addresses that fail validation (mail from the world is often odd): those are
    only trimmed and lower-cased, so they still compare equal to themselves. Remembered for
    the last few thousand addresses: the mail bridge asks about each sender several times.
    """
    canonical = _CANONICAL.get(address)
    if canonical is None:
        canonical = _canonical(address)
        remember_canonical(address, canonical)
    return canonical


def remember_canonical(address: str, canonical: str) -> None:
    """Note what :func:`canonical_address` gives for ``address``, worked out elsewhere (the
    mail bridge's worker processes do it while parsing)."""
    if len(_CANONICAL) >= _CANONICAL_MAX:
        _CANONICAL.clear()
    _CANONICAL[address] = canonical


_CANONICAL: dict[str, str] = {}
_CANONICAL_MAX = 8192


def _canonical(address: str) -> str:
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
