"""Recognising mail written by machines: auto-replies, list traffic and bounces.

Why it matters: an acknowledgement sent to an out-of-office reply starts a mail loop, and one
sent to a bounce goes nowhere. The signals, strongest first:

* RFC 3834 ``Auto-Submitted`` with any value but ``no``;
* the de-facto ``X-Autoreply``, ``X-Autorespond`` and Microsoft's ``X-Auto-Response-Suppress``;
* ``Precedence: bulk | junk | list | auto_reply`` and ``List-Id`` (RFC 2919) for list mail;
* an empty ``Return-Path: <>`` (RFC 5321 4.5.5: notifications are sent with a null sender);
* ``MAILER-DAEMON`` or ``postmaster`` as the sender;
* a ``multipart/report`` delivery status notification (RFC 3464) marks a bounce.

For a bounce of our own mail we also dig out the Message-ID of the mail that bounced (from its
``message/rfc822`` or ``text/rfc822-headers`` part) and the recipients it failed for, so that
the bounce lands on the case it bounced from.
"""

from __future__ import annotations

import base64
import binascii
import quopri
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from mailbridge.headers import addresses_in, message_id

_AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_DAEMONS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})
_HEADER_PARTS = frozenset({"message/rfc822", "text/rfc822-headers", "message/rfc822-headers"})
_STATUS_PARTS = frozenset(
    {"message/delivery-status", "message/global-delivery-status", "text/delivery-status"}
)
MAX_PARTS = 200  # a report with more parts than this is not a report

HeaderGetter = Callable[[str], Sequence[str]]


@dataclass(frozen=True)
class Automatic:
    """What the machine signals say about one message."""

    auto_submitted: bool = False
    bounce: bool = False
    signals: tuple[str, ...] = ()
    bounced_message_ids: tuple[str, ...] = ()
    bounced_recipients: tuple[str, ...] = ()


@dataclass
class _Findings:
    signals: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)


def classify(header: HeaderGetter, msg: Message | None, sender: str | None) -> Automatic:
    """Classify a message from its headers (``header(name)`` -> values) and MIME structure."""
    found = _Findings()
    _auto_signals(header, sender, found)
    bounce = _is_bounce(header, msg, sender, found)
    if bounce and msg is not None:
        _bounced_original(msg, found)
    return Automatic(
        auto_submitted=bool(found.signals),
        bounce=bounce,
        signals=tuple(found.signals),
        bounced_message_ids=tuple(dict.fromkeys(found.ids)),
        bounced_recipients=tuple(dict.fromkeys(found.recipients)),
    )


def _first(header: HeaderGetter, name: str) -> str | None:
    values = header(name)
    return values[0].strip() if values else None


def _auto_signals(header: HeaderGetter, sender: str | None, found: _Findings) -> None:
    auto_submitted = _first(header, "Auto-Submitted")
    if auto_submitted and auto_submitted.split(";")[0].strip().lower() != "no":
        found.signals.append("auto-submitted")
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"):
        if header(name):
            found.signals.append(name.lower())
    precedence = (_first(header, "Precedence") or "").lower()
    if precedence in _AUTO_PRECEDENCE:
        found.signals.append(f"precedence:{precedence}")
    if header("List-Id"):
        found.signals.append("list-id")
    return_path = _first(header, "Return-Path")
    if return_path is not None and return_path.replace(" ", "") in ("<>", ""):
        found.signals.append("null-return-path")
    if _is_daemon(sender):
        found.signals.append("daemon-sender")


def _is_daemon(sender: str | None) -> bool:
    if not sender or "@" not in sender:
        return False
    return sender.rsplit("@", 1)[0].strip('"').lower() in _DAEMONS


def _is_bounce(
    header: HeaderGetter, msg: Message | None, sender: str | None, found: _Findings
) -> bool:
    if msg is not None:
        if msg.get_content_type() == "multipart/report":
            report_type = str(msg.get_param("report-type") or "").lower()
            found.signals.append(f"report:{report_type or 'unknown'}")
            # Read receipts (disposition-notification) are automatic, but not bounces.
            if report_type in ("delivery-status", "global-delivery-status", ""):
                return True
        if any(part.get_content_type() in _STATUS_PARTS for part in _parts(msg)):
            found.signals.append("delivery-status-part")
            return True
    return _is_daemon(sender)


def _parts(msg: Message) -> Iterator[Message]:
    for count, part in enumerate(msg.walk()):
        if count >= MAX_PARTS:
            return
        yield part


def _bounced_original(msg: Message, found: _Findings) -> None:
    """Message-IDs and recipients of the mail that bounced, from the report's parts."""
    for part in _parts(msg):
        ctype = part.get_content_type()
        if ctype in _HEADER_PARTS:
            headers = _embedded_headers(part)
            if headers is None:
                continue
            embedded_id = message_id(headers.get("Message-ID"))
            if embedded_id:
                found.ids.append(embedded_id)
            for name in ("To", "Cc"):
                found.recipients.extend(addresses_in(headers.get(name)))
        elif ctype in _STATUS_PARTS:
            for fields in _status_fields(part):
                for name in ("Final-Recipient", "Original-Recipient"):
                    value = fields.get(name.lower())
                    if value:
                        found.recipients.extend(addresses_in(value.split(";", 1)[-1]))


def _embedded_headers(part: Message) -> Mapping[str, str] | None:
    """The headers of the returned message, whether attached whole or as headers only."""
    payload = part.get_payload()
    encoded = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        inner = payload[0]
        if encoded not in ("base64", "quoted-printable"):
            return {name: str(inner.get(name, "")) for name in ("Message-ID", "To", "Cc")}
        # RFC 2046 forbids encoding message/rfc822, but some servers do: decode, then read.
        payload = inner.get_payload()
        raw = _decoded(payload if isinstance(payload, str) else "", encoded)
    else:
        raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return None
    parsed = BytesHeaderParser(policy=compat32).parsebytes(raw)
    return {name: str(parsed.get(name, "")) for name in ("Message-ID", "To", "Cc")}


def _decoded(text: str, encoding: str) -> bytes:
    try:
        if encoding == "base64":
            return base64.b64decode(text)
        return quopri.decodestring(text.encode("ascii", "replace"))
    except (binascii.Error, ValueError):
        return b""


def _status_fields(part: Message) -> Iterator[dict[str, str]]:
    """The per-recipient field groups of a delivery-status part (RFC 3464 section 2)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        for block in payload:
            if isinstance(block, Message):
                yield {name.lower(): str(value) for name, value in block.items()}
        return
    text = payload if isinstance(payload, str) else ""
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, colon, value = line.partition(":")
            if colon:
                fields[name.strip().lower()] = value.strip()
        yield fields
