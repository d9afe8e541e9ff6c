"""Raw mail bytes -> :class:`ParsedMail`, with every fallback a real mailbox needs. Never raises.

The standard library's ``email`` package with ``policy.default`` does the MIME work. Around it:

* headers are also read with the lenient ``compat32`` parser, so a header the structured
  parser chokes on still yields its raw text (and addresses by pattern);
* the date falls back to the arrival time, the charset to UTF-8 then Windows-1252;
* HTML is sanitized here (``portal.sanitize``), before anything stores it;
* whatever goes wrong is written into ``problems`` in words fit for staff, and the caller
  flags the message; the raw bytes were stored before parsing started, so nothing is lost.
"""

from __future__ import annotations

import functools
import logging
import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import errors as email_errors
from email import policy
from email.header import Header, decode_header
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import EmailPolicy
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from mailbridge.authresults import our_results
from mailbridge.automatic import Automatic, classify
from mailbridge.charsets import decode_bytes, decode_words, one_line, storable
from mailbridge.headers import addresses_in, message_id, message_ids
from portal.addresses import decode_encoded_words
from portal.sanitize import html_to_text, sanitize_html

log = logging.getLogger(__name__)

MAX_ATTACHMENTS = 500  # beyond this the rest stay in the raw message only
MAX_DEPTH = 30  # nesting deeper than this is a MIME bomb, not a letter
MAX_RECIPIENTS = 100
SUBJECT_MAX = 2_000
NAME_MAX = 200
ADDRESS_MAX = 320
FILENAME_MAX = 255
# Defects after which what we show may not be what the sender wrote: worth a staff look.
_STRUCTURAL_DEFECTS = (
    email_errors.CloseBoundaryNotFoundDefect,
    email_errors.NoBoundaryInMultipartDefect,
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.MultipartInvariantViolationDefect,
)
_FUTURE_SLACK = timedelta(days=366)


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)
    inline: bool = False
    content_id: str | None = None


@dataclass
class ParsedMail:
    """Everything the bridge needs from one message; strings are safe to store as they are."""

    sent_at: datetime
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    reply_ids: list[str] = field(default_factory=list)  # In-Reply-To ids, then References
    sender: str | None = None
    sender_name: str | None = None
    recipients: list[str] = field(default_factory=list)
    subject: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    attachments: list[ParsedAttachment] = field(default_factory=list)
    # Our receiving server's verdicts only (mailbridge.authresults), and the domain its DMARC
    # pass was for: what mailbridge.senders compares with the From.
    auth_results: dict[str, str] = field(default_factory=dict)
    dmarc_from: str | None = None
    automatic: Automatic = field(default_factory=Automatic)
    problems: list[str] = field(default_factory=list)

    @property
    def thread_ids(self) -> list[str]:
        """Message-IDs this one answers, nearest first: In-Reply-To, then References backwards."""
        ordered = [*self.reply_ids, *reversed(self.references)]
        return list(dict.fromkeys(ordered))


class _MemoPolicy(EmailPolicy):
    """``policy.default`` that parses each header once per message, not once per access.

    ``policy.default`` re-parses a header every time it is read, and ``get_content_type()``
    reads Content-Type about seven times per MIME part: two thirds of parsing time went there
    (bench/README.md). The parsed header objects are immutable, so sharing them is safe.
    """

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name"):  # already a parsed header object
            return value
        return _parsed_header(name, value)


# One message's headers are read again and again; 256 entries catch that (4,096 were no
# faster and kept some 40 MB of parse trees alive).
@functools.lru_cache(maxsize=256)
def _parsed_header(name: str, value: str) -> Any:
    return policy.default.header_fetch_parse(name, value)


MEMO_POLICY = _MemoPolicy()


def parse_mail(raw: bytes, *, arrived_at: datetime, authserv_id: str | None = None) -> ParsedMail:
    """Parse ``raw``; on any failure return what the raw headers still tell, with a problem."""
    try:
        return _parse(raw, arrived_at=arrived_at, authserv_id=authserv_id)
    except Exception as exc:  # the sender's bytes must never stop the bridge
        log.warning("message could not be parsed (%s); keeping it raw", type(exc).__name__)
        mail = _fallback(raw, arrived_at)
        mail.problems.append(f"the message could not be parsed ({type(exc).__name__})")
        return mail


# -- headers ----------------------------------------------------------------------------------


class _Headers:
    """Header access that degrades: structured parser first, raw text and patterns after."""

    def __init__(self, msg: EmailMessage | None, raw: bytes) -> None:
        self.msg = msg
        self.raw: Message | _RawHeaders = (
            BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
            if msg is None
            else _RawHeaders(msg)
        )

    def values(self, name: str) -> list[str]:
        """Raw values, top-most first (encoded words left as they are)."""
        return [_raw_text(value) for value in self.raw.get_all(name) or []]

    def first(self, name: str) -> str | None:
        values = self.values(name)
        return values[0] if values else None

    def text(self, name: str) -> str | None:
        """The value with RFC 2047 words decoded by our charset rules (``iso-8859-8-i`` too)."""
        return decode_words(self.first(name))

    def addresses(self, name: str) -> list[tuple[str, str]]:
        """``(display name, address)`` pairs, plausible addresses only.

        The raw header first (display names decoded by our rules: ``policy.default`` splits
        adjacent encoded words with a space, CPython gh-128110), then the structured parser,
        then a plain pattern over the text.
        """
        raw_values = self.values(name)
        try:
            pairs = [(n, _decoded(a)) for n, a in getaddresses(raw_values) if _plausible(a)]
        except Exception:
            pairs = []
        if pairs:
            return [(decode_words(n) or "", a) for n, a in pairs]
        if self.msg is not None:
            try:
                header = self.msg.get(name)
                for address in getattr(header, "addresses", ()) or ():
                    if _plausible(address.addr_spec):
                        pairs.append((str(address.display_name), str(address.addr_spec)))
            except Exception:
                pairs = []
        if pairs:
            return pairs
        return [("", a) for value in raw_values for a in addresses_in(value)]


class _RawHeaders:
    """The top-level headers as ``compat32`` gives them, from a message already parsed.

    Both policies keep a header's source text the same way (``header_source_parse``), so
    reading the stored values back through ``compat32`` answers what a second, header-only
    ``compat32`` parse would, without parsing the headers twice (a quarter of parse time).
    """

    def __init__(self, msg: EmailMessage) -> None:
        self._by_name: dict[str, list[tuple[str, str]]] = {}
        for key, value in msg.raw_items():
            self._by_name.setdefault(key.lower(), []).append((key, value))

    def get_all(self, name: str) -> list[Any] | None:
        found = self._by_name.get(name.lower())
        if not found:
            return None
        return [policy.compat32.header_fetch_parse(key, value) for key, value in found]


def _raw_text(value: object) -> str:
    """compat32 hands back raw 8-bit header bytes as a ``Header`` in "unknown-8bit"; turn it
    into text by our charset rules (UTF-8 first: SMTPUTF8 mail is sent that way)."""
    if not isinstance(value, Header):
        return str(value)
    try:
        chunks = decode_header(value)
    except Exception:
        return str(value)
    return "".join(
        decode_bytes(chunk, None if charset in (None, "unknown-8bit") else charset)
        if isinstance(chunk, bytes)
        else chunk
        for chunk, charset in chunks
    )


def _plausible(address: str) -> bool:
    """``local@domain.tld`` with nothing odd: what we may reply to and compare."""
    local, at, domain = address.rpartition("@")
    return bool(
        at
        and local
        and "." in domain.strip(".")
        and not any(ch.isspace() or ch in '<>"(),;[]' for ch in local + domain)
    )


def _decoded(address: str) -> str:
    """An address with RFC 2047 encoded words in it, decoded. RFC 2047 forbids them there, yet
    mailers write ``=?utf-8?q?jos=C3=A9?=@example.com`` for ``josé@example.com`` (Python's
    ``email`` package among them) and mail clients show it decoded: that is the address the
    sender means, and the one a reply can reach (RFC 6531)."""
    if "=?" not in address:
        return address
    decoded = decode_encoded_words(address)
    return decoded if decoded.count("@") == 1 and _plausible(decoded) else address


def _sender(headers: _Headers) -> tuple[str | None, str | None]:
    for name in ("From", "Sender", "Return-Path"):
        pairs = headers.addresses(name)
        if pairs:
            display, address = pairs[0]
            return one_line(address, ADDRESS_MAX), one_line(display, NAME_MAX) or None
    return None, None


def _recipients(headers: _Headers) -> list[str]:
    cleaned = (
        one_line(address, ADDRESS_MAX)
        for name in ("To", "Cc")
        for _, address in headers.addresses(name)
    )
    return list(dict.fromkeys(address for address in cleaned if address))[:MAX_RECIPIENTS]


def _sent_at(headers: _Headers, arrived_at: datetime) -> datetime:
    """The Date header in UTC; the arrival time when it is missing, unparseable or absurd."""
    # The raw header straight to parsedate_to_datetime: what policy.default's DateHeader does
    # too, without building the parse tree we would throw away.
    raw = headers.first("Date")
    try:
        value = parsedate_to_datetime(raw) if raw else None
    except (TypeError, ValueError, IndexError):
        value = None
    if value is None:
        return arrived_at
    if value.tzinfo is None:  # "-0000": the zone is unknown (RFC 5322 3.3); read it as UTC
        value = value.replace(tzinfo=UTC)
    if value.year < 1970 or value > arrived_at + _FUTURE_SLACK:
        return arrived_at
    return value.astimezone(UTC)


# -- bodies and attachments --------------------------------------------------------------------


def _serialized(msg: Message) -> bytes:
    try:
        return msg.as_bytes(policy=policy.compat32)
    except Exception:
        return msg.as_string(policy=policy.compat32).encode("utf-8", "surrogateescape")


def _part_bytes(part: Message) -> bytes:
    """A leaf's content, transfer encoding undone; an attached message or an over-deep
    multipart as its serialized bytes."""
    if part.is_multipart():
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if part.get_content_type().startswith("message/") and isinstance(inner, Message):
            return _serialized(inner)
        return _serialized(part)
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return b""


def _part_text(part: Message) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(_part_bytes(part), charset)


def _body_part(msg: EmailMessage, kind: str) -> Message | None:
    try:
        return msg.get_body(preferencelist=(kind,))
    except Exception:
        return None


def _leaves(
    part: Message, depth: int = 0, in_alternative: bool = False
) -> Iterator[tuple[Message, bool]]:
    """Leaf parts in order with whether they sit in a multipart/alternative. A message/rfc822
    part is a leaf: it is kept whole, as one attached ``.eml``."""
    ctype = part.get_content_type()
    if part.is_multipart() and ctype.startswith("multipart/") and depth < MAX_DEPTH:
        payload = part.get_payload()
        for sub in payload if isinstance(payload, list) else ():
            if isinstance(sub, Message):
                yield from _leaves(sub, depth + 1, ctype == "multipart/alternative")
        return
    yield part, in_alternative


def _is_attachment(part: Message) -> bool:
    try:
        return part.get_content_disposition() == "attachment" or bool(part.get_filename())
    except Exception:
        return True


def _filename(part: Message, index: int) -> str:
    ctype = part.get_content_type()
    try:
        name = part.get_filename()
    except Exception:
        name = None
    cleaned = one_line(decode_words(name), None) if name else None
    if cleaned:
        cleaned = cleaned.replace("/", "_").replace("\\", "_").lstrip(". ")
    if not cleaned:
        if ctype in ("message/rfc822", "message/global"):
            extension = ".eml"
        else:
            extension = mimetypes.guess_extension(ctype) or ".bin"
        cleaned = f"part-{index}{extension}"
    if len(cleaned) > FILENAME_MAX:
        stem, dot, extension = cleaned.rpartition(".")
        keep = f".{extension}" if dot and len(extension) <= 16 else ""
        cleaned = cleaned[: FILENAME_MAX - len(keep)] + keep
    return cleaned


def _attachment(part: Message, index: int) -> ParsedAttachment:
    try:
        disposition = part.get_content_disposition()
    except Exception:
        disposition = None
    content_id = message_id(part.get("Content-ID")) if part.get("Content-ID") else None
    return ParsedAttachment(
        filename=_filename(part, index),
        content_type=part.get_content_type()[:255],
        data=_part_bytes(part),
        inline=disposition == "inline" or (content_id is not None and disposition is None),
        content_id=content_id,
    )


@dataclass
class _Bodies:
    text: str | None = None
    html: str | None = None
    attachments: list[ParsedAttachment] = field(default_factory=list)


def _bodies(msg: EmailMessage, problems: list[str]) -> _Bodies:
    text_part = _body_part(msg, "plain")
    html_part = _body_part(msg, "html")
    result = _Bodies()
    texts = [_part_text(text_part)] if text_part is not None else []
    if html_part is not None:
        result.html = sanitize_html(_part_text(html_part))
    index = 0
    for part, in_alternative in _leaves(msg):
        if part is text_part or part is html_part:
            continue
        if (
            text_part is not None
            and part.get_content_type() == "text/plain"
            and not in_alternative
            and not _is_attachment(part)
        ):
            # Apple Mail and lists split one letter into several inline text parts.
            texts.append(_part_text(part))
            continue
        index += 1
        if len(result.attachments) >= MAX_ATTACHMENTS:
            problems.append(
                f"more than {MAX_ATTACHMENTS} parts; the rest are only in the raw message"
            )
            break
        result.attachments.append(_attachment(part, index))
    if texts:
        result.text = "\n\n".join(texts)
    elif result.html is not None:
        result.text = html_to_text(result.html)
    return result


def _defects(msg: Message) -> list[str]:
    found: list[str] = []
    for count, part in enumerate(msg.walk()):
        if count > MAX_ATTACHMENTS:
            break
        for defect in getattr(part, "defects", ()):
            if isinstance(defect, _STRUCTURAL_DEFECTS) and type(defect).__name__ not in found:
                found.append(type(defect).__name__)
    return found


# -- the whole message --------------------------------------------------------------------------


def _parse(raw: bytes, *, arrived_at: datetime, authserv_id: str | None) -> ParsedMail:
    problems: list[str] = []
    msg: EmailMessage | None
    try:
        parsed = BytesParser(policy=MEMO_POLICY).parsebytes(raw)
        msg = parsed if isinstance(parsed, EmailMessage) else None
    except Exception as exc:
        problems.append(f"the MIME structure could not be parsed ({type(exc).__name__})")
        msg = None
    headers = _Headers(msg, raw)
    mail = _from_headers(headers, arrived_at, authserv_id, problems)
    if msg is not None:
        bodies = _bodies(msg, problems)
        mail.body_text = storable(bodies.text)
        mail.body_html = storable(bodies.html)
        mail.attachments = bodies.attachments
        defects = _defects(msg)
        if defects:
            problems.append(f"the MIME structure is damaged ({', '.join(defects)})")
    mail.problems = problems
    return mail


def _from_headers(
    headers: _Headers, arrived_at: datetime, authserv_id: str | None, problems: list[str]
) -> ParsedMail:
    sender, sender_name = _sender(headers)
    reply_ids = message_ids(headers.first("In-Reply-To"))
    server = our_results(headers.values("Authentication-Results"), authserv_id)
    mail = ParsedMail(
        sent_at=_sent_at(headers, arrived_at),
        message_id=message_id(headers.first("Message-ID")),
        in_reply_to=reply_ids[0] if reply_ids else None,
        reply_ids=reply_ids,
        references=message_ids(" ".join(headers.values("References"))),
        sender=sender,
        sender_name=sender_name,
        recipients=_recipients(headers),
        subject=one_line(headers.text("Subject"), SUBJECT_MAX),
        auth_results=server.verdicts,
        dmarc_from=server.dmarc_from,
        problems=problems,
    )
    if server.problem:
        problems.append(server.problem)
    mail.automatic = classify(headers.values, headers.msg, sender)
    if sender is None:
        problems.append("no sender address could be read")
    return mail


def _fallback(raw: bytes, arrived_at: datetime) -> ParsedMail:
    """Headers only, by the lenient parser: what we can still tell about unparseable mail."""
    try:
        return _from_headers(_Headers(None, raw), arrived_at, None, [])
    except Exception:
        return ParsedMail(sent_at=arrived_at)


def parse_headers_only(
    header_bytes: bytes, *, arrived_at: datetime, authserv_id: str | None = None
) -> ParsedMail:
    """For a message too large to fetch: who sent it, when, and what about, from its header."""
    mail = parse_mail(
        header_bytes.rstrip(b"\r\n") + b"\r\n\r\n", arrived_at=arrived_at, authserv_id=authserv_id
    )
    mail.body_text = None
    mail.body_html = None
    mail.attachments = []
    return mail
