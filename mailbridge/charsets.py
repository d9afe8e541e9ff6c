"""Turning the bytes the world sends into text we can store, whatever they claim to be.

Mail declares its charset, and is often wrong: ``charset=utf-8`` on Windows-1252 bytes,
``x-unknown``, ``unknown-8bit``, or none at all on 8-bit text. The rules:

* a charset Python knows is used, with U+FFFD for bytes that do not fit it;
* an unknown or missing one is tried as UTF-8 (strictly, so a wrong guess is detected),
  then as Windows-1252, whose every byte but five maps to a character.

Text also passes through :func:`storable`, because parsers hand back lone surrogates for raw
8-bit header bytes (``\\udcc3``), which no database will store, and NUL, which PostgreSQL
refuses in a text column.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

from portal.text import clean_text

# Names that say "we do not know" rather than naming a charset.
_UNKNOWN = frozenset({"", "unknown", "unknown-8bit", "x-unknown", "x-user-defined", "default"})
# Names mail uses that Python does not know. ``-i``/``-e`` (RFC 1556) only say whether
# Hebrew or Arabic is in logical or visual order; the bytes are those of the base charset.
_ALIASES = {
    "latin1": "iso-8859-1",
    "cp-1252": "windows-1252",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-8-e": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "iso-8859-6-e": "iso-8859-6",
    "x-mac-roman": "mac-roman",
}
# Legacy charsets tried, by the script they make, on undeclared 8-bit text that is not UTF-8.
_LEGACY = ("windows-1256", "windows-1251", "koi8-r", "windows-1255", "windows-1253")
# About the twelve most frequent letters of the language each legacy charset serves.
_RUSSIAN = "оеаинтсрвлкм"
_COMMON_LETTERS = {
    "windows-1256": "اليمونرتبعدهة",
    "windows-1251": _RUSSIAN,
    "koi8-r": _RUSSIAN,
    "windows-1255": "יוהלארתבמשנ",
    "windows-1253": "αοετινσρκπλμάέίόή",
}
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")


def known_codec(charset: str | None) -> str | None:
    """The Python codec for a declared charset, or None when it is unknown or not text.

    ``codecs.lookup`` also finds bytes-to-bytes codecs (``base64``, ``zlib``): those are not
    charsets and are refused.
    """
    if charset is None:
        return None
    name = charset.strip().strip("\"'").lower()
    name = _ALIASES.get(name, name)
    if name in _UNKNOWN:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode ``data`` by its declared charset, falling back as the module docstring says."""
    codec = known_codec(charset)
    if codec is not None and codec != "ascii":
        try:
            return data.decode(codec, errors="replace")
        except (UnicodeError, LookupError, ValueError):
            pass  # codecs such as idna refuse errors="replace": fall back below
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _sniff_legacy(data)


def _sniff_legacy(data: bytes) -> str:
    """Undeclared 8-bit text that is not UTF-8: Windows-1252, unless it is clearly not Latin.

    Read as Windows-1252, Western text has a few accented letters inside mostly-ASCII words;
    Arabic, Cyrillic, Hebrew or Greek bytes read that way become words made only of accented
    letters. Then each legacy charset is tried, and the one whose letters are the most
    frequent letters of their language wins (mojibake spreads over rare letters). A guess:
    the raw bytes are kept, so staff can always see what was sent.
    """
    western = data.decode("windows-1252", errors="replace")
    letters = [ch for ch in western if ch.isalpha()]
    foreign = [ch for ch in letters if ord(ch) > 127]
    if not letters or len(foreign) / len(letters) < 0.5:
        return western
    best, best_score = western, 0.0
    for codec in _LEGACY:
        text = data.decode(codec, errors="replace")
        score = _frequency_score(text, _COMMON_LETTERS[codec])
        if score > best_score:
            best, best_score = text, score
    return best if best_score >= 0.4 else western


def _frequency_score(text: str, common: str) -> float:
    """The share of non-ASCII characters that are among a language's most frequent letters."""
    high = [ch for ch in text if ord(ch) > 127 and not ch.isspace()]
    if not high:
        return 0.0
    return sum(ch in common for ch in high) / len(high)


def decode_words(value: str | None) -> str | None:
    """A header value with its RFC 2047 encoded words decoded; never raises.

    Adjacent words in one charset are joined as bytes before decoding (mailers split UTF-8
    characters across words), whitespace between encoded words is dropped (RFC 2047 6.2),
    and charsets go through :func:`decode_bytes`, so ``iso-8859-8-i`` works.
    """
    if value is None:
        return None
    value = storable(value) or ""
    parts: list[str] = []
    pending: bytes = b""
    pending_charset: str | None = None
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        charset = match.group(1).split("*", 1)[0]
        if between and not (between.isspace() and pending_charset is not None):
            parts.append(_flush(pending, pending_charset))
            pending, pending_charset = b"", None
            parts.append(between)
        if pending_charset is not None and charset.lower() != pending_charset.lower():
            parts.append(_flush(pending, pending_charset))
            pending = b""
        pending += _word_bytes(match.group(2), match.group(3))
        pending_charset = charset
        position = match.end()
    parts.append(_flush(pending, pending_charset))
    parts.append(value[position:])
    return "".join(parts)


def _word_bytes(encoding: str, text: str) -> bytes:
    try:
        if encoding in "Bb":
            return base64.b64decode(text + "=" * (-len(text) % 4))
        data = text.replace("_", " ").encode("ascii", errors="replace")
        return binascii.a2b_qp(data)
    except (binascii.Error, ValueError):
        return text.encode("ascii", errors="replace")


def _flush(data: bytes, charset: str | None) -> str:
    return decode_bytes(data, charset) if charset is not None and data else ""


def storable(text: str | None) -> str | None:
    """Text any database will store: surrogates recovered as UTF-8, controls and NUL removed."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", errors="surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", errors="replace")
        text = decode_bytes(raw)
    return clean_text(text)


def one_line(text: str | None, limit: int | None = None) -> str | None:
    """A header value fit for one line: storable, whitespace runs folded to one space."""
    cleaned = storable(text)
    if cleaned is None:
        return None
    folded = " ".join(cleaned.split())
    if limit is not None and len(folded) > limit:
        folded = folded[: limit - 1] + "…"
    return folded
