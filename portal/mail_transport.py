"""Handing one stored mail to the SMTP server: the envelope, SMTPUTF8, timeouts, and what a
refusal means for the next attempt.

Every SMTP operation has a timeout (``PORTAL_MAIL_TIMEOUT``): a server that accepts the
connection and never answers costs one mail one timeout, never the queue behind it.

Internationalised addresses (RFC 6530–6532): an address whose local part is ASCII goes into
the envelope with its domain in IDNA form (``jose@xn--exmple-cua.com``), which every server
takes. One whose local part is not ASCII (``josé@example.com``) needs the server's
``SMTPUTF8`` extension; without it the mail cannot be delivered as addressed, so it fails for
good with a reason staff can read, instead of being retried for ever.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from portal.addresses import mail_address
from portal.addresses import needs_smtputf8 as needs_address_smtputf8
from portal.config import Settings


class PermanentFailure(Exception):
    """This mail can never be delivered as it is; the message says why, for staff."""


class TransientFailure(Exception):
    """Try this mail again later; the message says what happened."""


def envelope_address(address: str) -> str:
    """The form of ``address`` for MAIL FROM / RCPT TO: its domain in ASCII (IDNA), its local
    part as written; ``PermanentFailure`` for an address no server could take."""
    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise PermanentFailure(f"The address is not valid: {exc}") from exc
    return mail_address(checked.normalized)


def needs_smtputf8(addresses: Sequence[str], raw: bytes) -> bool:
    """Whether this mail can only travel with SMTPUTF8: a non-ASCII address in the envelope,
    or UTF-8 in its headers (composed that way because an address needed it)."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    return any(needs_address_smtputf8(address) for address in addresses) or not head.isascii()


@contextmanager
def smtp_connection(settings: Settings) -> Iterator[smtplib.SMTP]:
    """A logged-in connection to the configured server, every operation under the timeout."""
    factory = smtplib.SMTP_SSL if settings.mail_use_ssl else smtplib.SMTP
    try:
        connection = factory(
            settings.mail_server, settings.mail_port, timeout=settings.mail_timeout
        )
    except (OSError, smtplib.SMTPException) as exc:
        raise TransientFailure(f"could not connect to the mail server: {_describe(exc)}") from exc
    try:
        connection.ehlo_or_helo_if_needed()
        if settings.mail_use_tls and not settings.mail_use_ssl:
            connection.starttls()
            connection.ehlo()
        if settings.mail_username:
            connection.login(settings.mail_username, settings.mail_password or "")
        yield connection
    finally:
        try:
            connection.quit()
        except (OSError, smtplib.SMTPException):
            connection.close()


def send(connection: smtplib.SMTP, sender: str, recipients: Sequence[str], raw: bytes) -> None:
    """Send one mail on an open connection; ``PermanentFailure`` or ``TransientFailure``."""
    envelope_from = envelope_address(sender)
    envelope_to = [envelope_address(address) for address in recipients]
    options: list[str] = []
    if needs_smtputf8([envelope_from, *envelope_to], raw):
        if not connection.has_extn("smtputf8"):
            raise PermanentFailure(
                "The mail server does not accept internationalised addresses (SMTPUTF8), so "
                "this mail cannot be sent to this address; write from an address the server "
                "can take, or have the server support SMTPUTF8."
            )
        options = ["SMTPUTF8", "BODY=8BITMIME"]
    try:
        refused = connection.sendmail(envelope_from, envelope_to, raw, mail_options=options)
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = min(exc.recipients.values())
        raise _by_code(code, "the mail server refused the recipient", None, text) from exc
    except smtplib.SMTPAuthenticationError as exc:
        # The server's account, not this mail: every mail would fail; keep them all queued.
        raise TransientFailure(f"the mail server refused our login: {_describe(exc)}") from exc
    except smtplib.SMTPResponseException as exc:
        raise _by_code(exc.smtp_code, "the mail server refused the mail", exc) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise TransientFailure(f"the connection failed: {_describe(exc)}") from exc
    if refused:
        code, text = min(refused.values())
        raise _by_code(code, "the mail server refused a recipient", None, text)


def _by_code(code: int, what: str, exc: Exception | None, text: bytes | str = b"") -> Exception:
    if exc is not None:
        detail = f" ({_describe(exc)})"
    else:
        said = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        detail = f" ({code} {said})"[:500]
    if 500 <= code < 600:
        return PermanentFailure(f"{what}{detail}")
    return TransientFailure(f"{what} for now{detail}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
        return f"{exc.smtp_code} {text}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


def write_to_directory(directory: Path, name: str, raw: bytes) -> Path:
    """Development without a mail server: the mail as an ``.eml`` file, written atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.eml"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(raw)
    tmp.replace(path)
    return path
