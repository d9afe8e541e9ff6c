"""E-mail addresses: validated for replies, folded to one canonical form per person, and
compared for look-alikes. The one place, for the web forms and the mail bridge alike.

Three forms of one address, each for one job:

- **as written** (:func:`normalize_address`): what the person typed or sent from, checked by
  email-validator (internationalised addresses allowed, RFC 6530-6532), invisible characters
  dropped. Replies go there: ``x@xn--bcher-kva.example`` is kept as ``x@bücher.example``.
- **sendable** (:func:`mail_address`): the same with its domain in ASCII (IDNA A-labels), for
  the SMTP envelope and the To header. Only a non-ASCII local part (``josé@example.com``)
  still needs a server that offers SMTPUTF8 (:func:`needs_smtputf8`).
- **canonical** (:func:`canonical_address`): what abuse handling, case parties and signed
  Message-IDs compare, so that writing as ``Jane.Doe+appeal@GoogleMail.com.`` or with a
  zero-width space is still ``janedoe@gmail.com``. Never used to send mail.

A fourth, :func:`lookalike_key`, compares by UTS #39 skeletons: ``jane.doe@gmaıl.com`` (a
dotless i) is another domain, so another canonical address, but it imitates
``janedoe@gmail.com`` and is treated as the same person where a lockout is concerned.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from email.errors import MessageError
from email.header import decode_header

import icu  # type: ignore[import-untyped]  # PyICU ships no type information
import idna
from email_validator import EmailNotValidError, validate_email

__all__ = [
    "LARGE_PROVIDERS",
    "EmailNotValidError",
    "canonical_address",
    "canonical_domain",
    "imitated_domain",
    "lookalike_key",
    "looks_like",
    "mail_address",
    "needs_smtputf8",
    "normalize_address",
    "redact",
    "remember_canonical",
    "skeleton",
    "strip_invisible",
]

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

# Mail providers whose look-alike domains are only ever an imitation (a sender at
# ``gmaıl.com`` is pretending): mail from one is quarantined and flagged for staff.
LARGE_PROVIDERS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "yahoo.com",
        "ymail.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "mail.ru",
        "yandex.ru",
        "yandex.com",
        "qq.com",
        "163.com",
        "naver.com",
        "zoho.com",
        "fastmail.com",
        "tutanota.com",
        "orange.fr",
        "free.fr",
        "laposte.net",
        "libero.it",
        "t-online.de",
    }
)

# Zero-width characters, bidi controls (LRM, RLO, isolates...), soft hyphens, variation
# selectors, tag characters: everything Unicode says to render as nothing
# (Default_Ignorable_Code_Point) and every format character (Cf). None of them is ever part
# of what a person means by their address; all of them are ways to spell it differently.
_INVISIBLE = {ord(ch): None for ch in icu.UnicodeSet("[[:Default_Ignorable_Code_Point:][:Cf:]]")}
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_SPOOF_CHECKER = icu.SpoofChecker()


def strip_invisible(text: str) -> str:
    """``text`` without zero-width characters, bidi controls and other invisible code points."""
    return text.translate(_INVISIBLE)


def decode_encoded_words(text: str) -> str:
    """RFC 2047 encoded words decoded wherever they are, even inside an address, where the RFC
    forbids them and mail clients show them decoded all the same:
    ``=?utf-8?q?jane.doe?=@gmail.com`` is ``jane.doe@gmail.com`` to the person reading it."""
    for _ in range(3):  # an encoded word may hide another one
        decoded = _ENCODED_WORD.sub(_decode_word, text)
        if decoded == text:
            break
        text = decoded
    return text


def _decode_word(match: re.Match[str]) -> str:
    try:
        ((data, charset),) = decode_header(match[0])
        if isinstance(data, bytes):
            return data.decode(charset or "ascii", "replace")
    except (LookupError, ValueError, MessageError):
        pass
    return match[0]


def normalize_address(address: str) -> str:
    """The address as written, as email-validator normalises it (syntax only, never DNS):
    internationalised addresses are welcome, invisible characters are dropped.

    Raises ``EmailNotValidError`` with a message fit to show the person who typed it.
    """
    result = validate_email(
        strip_invisible(address).strip(), check_deliverability=False, allow_smtputf8=True
    )
    return str(result.normalized)


def mail_address(address: str) -> str:
    """The address to send to: its local part as written, its domain in ASCII (A-labels).

    ``jose@exämple.com`` becomes ``jose@xn--exmple-cua.com``, which any SMTP server takes;
    ``josé@example.com`` stays as it is and needs SMTPUTF8. An address whose domain is no valid
    IDNA name is returned unchanged (the server will say what it thinks of it).
    """
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return address
    return f"{local}@{ascii_domain}"


def needs_smtputf8(address: str) -> bool:
    """Whether mail to ``address`` can only go through a server offering SMTPUTF8 (RFC 6531)."""
    return not mail_address(address).isascii()


def canonical_address(address: str) -> str:
    """One spelling per mailbox, for comparing: never for sending.

    In order: RFC 2047 encoded words decoded; invisible characters dropped; the local part
    unquoted, NFKC-normalised and case-folded, ``+tag`` dropped; the domain by
    :func:`canonical_domain` (NFKC, UTS-46, no trailing dot); at Gmail, dots dropped in any
    number and position, and ``googlemail.com`` is ``gmail.com``. Tolerant of anything (mail
    from the world is often odd): what is no address is folded the same way, so it still
    compares equal to itself. Remembered for the last few thousand addresses: the mail bridge
    asks about each sender several times.
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
    text = strip_invisible(decode_encoded_words(address)).strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    local, at, domain = text.rpartition("@")
    if not at:
        return _fold(text)
    local = _fold(_unquote(local))
    domain = canonical_domain(domain)
    local = local.split("+", 1)[0] or local
    if domain in GMAIL_DOMAINS:
        local = local.replace(".", "") or local
        domain = "gmail.com"
    return f"{local}@{domain}"


def _fold(text: str) -> str:
    # NFKC around the case fold, as Unicode's NFKC_Casefold does: ｊａｎｅ is jane.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _unquote(local: str) -> str:
    """``"jane.doe"`` is ``jane.doe`` (RFC 5321 quoted string, backslash escapes undone)."""
    if len(local) >= 2 and local[0] == local[-1] == '"':
        return re.sub(r"\\(.)", r"\1", local[1:-1])
    return local


@functools.lru_cache(maxsize=4096)
def canonical_domain(domain: str) -> str:
    """A domain in one spelling: NFKC, UTS-46 mapped (IDNA), Unicode labels, no trailing dot.

    ``Example.ORG.``, ``ＥＸＡＭＰＬＥ.org`` and ``example。org`` are ``example.org``;
    ``xn--bcher-kva.example`` is ``bücher.example``. A name that is no valid IDNA domain is
    still folded (NFKC, lower case, no trailing dot), never refused.
    """
    text = unicodedata.normalize("NFKC", strip_invisible(domain)).strip()
    if text.isascii() and "xn--" not in text.lower():
        return text.lower().rstrip(".")  # the common case, without the IDNA machinery
    try:
        mapped = idna.uts46_remap(text, std3_rules=False, transitional=False)
    except (idna.IDNAError, UnicodeError):
        return text.lower().rstrip(".")
    mapped = mapped.rstrip(".")
    try:
        return str(idna.decode(idna.encode(mapped, uts46=False)))
    except (idna.IDNAError, UnicodeError):
        return mapped


@functools.lru_cache(maxsize=4096)
def skeleton(text: str) -> str:
    """What ``text`` looks like: its UTS #39 skeleton (ICU's confusables data), case-folded,
    with combining marks dropped as well, because a dot or an accent on a letter is easily
    missed (``gmáil``, the ``İ`` of ``GMAİL``). Only for comparing, never for display."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    shape = unicodedata.normalize("NFD", _SPOOF_CHECKER.getSkeleton(0, folded))
    return "".join(ch for ch in shape if unicodedata.category(ch) != "Mn")


_PROVIDER_SKELETONS = {skeleton(domain): domain for domain in sorted(LARGE_PROVIDERS)}
_GMAIL_SKELETONS = frozenset(skeleton(domain) for domain in GMAIL_DOMAINS)


def lookalike_key(address: str) -> str:
    """Equal for two addresses that look alike: the skeletons of the canonical local part and
    domain, with Gmail's rules applied to whatever looks like Gmail, so that
    ``jane.doe@gmaıl.com`` and ``janedoe@gmail.com`` have the same key. A first sieve:
    :func:`looks_like` decides."""
    local, shape = _lookalike_parts(address)
    return f"{skeleton(local)}@{shape}"


def looks_like(address: str, other: str) -> bool:
    """Whether ``address`` imitates ``other``: the same :func:`lookalike_key`, where the local
    parts are the same but for characters outside ASCII. Two ASCII local parts that merely
    look alike (``anna.rn`` and ``anna.m`` at Gmail) are two people, each with their mailbox;
    ``jаne`` with a Cyrillic a is an imitation, as is any local part at a look-alike domain."""
    if lookalike_key(address) != lookalike_key(other):
        return False
    local, _ = _lookalike_parts(address)
    other_local, _ = _lookalike_parts(other)
    return local == other_local or not (local.isascii() and other_local.isascii())


def _lookalike_parts(address: str) -> tuple[str, str]:
    local, _, domain = canonical_address(address).rpartition("@")
    shape = skeleton(domain)
    if shape in _GMAIL_SKELETONS:
        local = local.replace(".", "") or local
        shape = skeleton("gmail.com")
    return local, shape


def imitated_domain(domain: str, protected: Iterable[str] = ()) -> str | None:
    """The domain that ``domain`` imitates without being it: a large provider, or one of
    ``protected`` (the domains of locked-out reporters); None when it imitates none."""
    own = canonical_domain(domain)
    shape = skeleton(own)
    found = _PROVIDER_SKELETONS.get(shape)
    if found is not None and found != own:
        return found
    for candidate in protected:
        other = canonical_domain(candidate)
        if other != own and skeleton(other) == shape:
            return other
    return None


def redact(address: str | None) -> str:
    """For logs: enough to tell two addresses apart in a trace, never enough to identify."""
    if not address or "@" not in address:
        return "<none>"
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"
