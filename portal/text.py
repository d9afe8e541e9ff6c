"""Cleaning what people type and checking the links they give, as plain functions."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

# C0 and C1 controls other than tab and newline, and DEL: never meaningful in a form field,
# and NUL cannot even be stored in a PostgreSQL text column.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(value: str | None) -> str | None:
    """NFC-normalised text with Unix line ends and no control characters."""
    if value is None:
        return None
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", _CONTROL.sub("", value))


def word_count(text: str) -> int:
    return len(text.split())


class InvalidURL(ValueError):
    """A link that we will not store, with a message fit for the person who typed it."""


def normalize_url(raw: str, *, max_length: int = 2000) -> str:
    """An http(s) URL in one canonical spelling, or :class:`InvalidURL` saying what is wrong.

    Scheme and host are lower-cased, an internationalised host is IDNA-encoded, default ports
    and user names are refused or dropped. Anything else (``javascript:``, ``data:``, spaces)
    is refused, because these links are shown to staff who will click them.
    """
    text = raw.strip()
    if len(text) > max_length:
        raise InvalidURL(f"is longer than {max_length} characters")
    if any(ch.isspace() for ch in text) or _CONTROL.search(text):
        raise InvalidURL("contains spaces or invisible characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL("is not a valid web address") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidURL("must start with https:// or http://")
    if parts.username is not None or parts.password is not None:
        raise InvalidURL("must not contain a user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidURL("has no host name")
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise InvalidURL("has an invalid host name") from exc
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}[scheme]
    netloc = host if port in (None, default_port) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, parts.fragment))


# A refusal names this many bad lines, then says how many more there are: a page listing
# hundreds of errors helps no one.
URL_PROBLEMS_SHOWN = 10


def parse_url_lines(text: str | None, *, limit: int) -> tuple[list[str], list[str]]:
    """One URL per line: the normalised URLs (duplicates dropped) and what is wrong, if anything.

    A list longer than ``limit`` lines is refused before any line is parsed, so that pasting
    10,000 lines costs a line count, not 10,000 URL checks.
    """
    lines = [line.strip() for line in (text or "").splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > limit:
        return [], [f"Give at most {limit} links, one per line; this list has {len(lines):,}."]
    urls: dict[str, None] = {}  # ordered, and a duplicate costs one lookup
    problems: list[str] = []
    bad = 0
    for number, line in enumerate(lines, start=1):
        try:
            urls.setdefault(normalize_url(line))
        except InvalidURL as exc:
            bad += 1
            if bad <= URL_PROBLEMS_SHOWN:
                shown = line if len(line) <= 60 else line[:57] + "..."
                problems.append(f"Line {number} ({shown}) {exc}.")
    if bad > URL_PROBLEMS_SHOWN:
        problems.append(f"{bad - URL_PROBLEMS_SHOWN} more lines are not valid links.")
    return list(urls), problems
