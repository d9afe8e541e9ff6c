"""IMAP connections through imapclient: connect, log in, select read-only, wait in IDLE.

Every failure to reach or read a mailbox comes out as :class:`MailboxUnavailable` with a
one-line reason that names the mailbox and the server, never the password. The bridge never
changes the mailbox: folders are selected read-only and bodies fetched with ``BODY.PEEK[]``,
so the role mailboxes stay exactly as the server delivered them (evidence, and a fallback if
the portal is ever replaced).
"""

from __future__ import annotations

import imaplib
import logging
import select
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from mailbridge.config import MailboxConfig
from mailbridge.errors import MailboxUnavailable

log = logging.getLogger(__name__)

# What a dead or misbehaving connection can raise out of imapclient/imaplib.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, timed out, TLS errors (ssl.SSLError is an OSError)
    imaplib.IMAP4.abort,
    imaplib.IMAP4.error,
    IMAPClientError,
)


@dataclass(frozen=True)
class FolderInfo:
    uidvalidity: int
    uidnext: int | None
    exists: int


def _reason(exc: BaseException) -> str:
    """A short, credential-free description of a connection failure."""
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or type(exc).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


def connect(config: MailboxConfig, *, timeout: float) -> IMAPClient:
    """A logged-in client, or :class:`MailboxUnavailable` saying what went wrong."""
    try:
        client = IMAPClient(config.host, port=config.port, ssl=config.ssl, timeout=timeout)
    except CONNECTION_ERRORS as exc:
        raise MailboxUnavailable(
            f"{config.name}: cannot connect to {config.where} ({_reason(exc)})"
        ) from None
    try:
        _login(client, config)
    except LoginError:
        _shutdown(client)
        raise MailboxUnavailable(f"{config.name}: login refused by {config.where}") from None
    except CONNECTION_ERRORS as exc:
        _shutdown(client)
        raise MailboxUnavailable(
            f"{config.name}: lost {config.where} while logging in ({_reason(exc)})"
        ) from None
    # Aware UTC datetimes for INTERNALDATE, not naive local time.
    client.normalise_times = False
    return client


def _login(client: IMAPClient, config: MailboxConfig) -> None:
    """LOGIN, or SASL PLAIN (UTF-8) for credentials LOGIN cannot carry: imaplib sends
    commands as ASCII, so a non-ASCII password would never reach the server."""
    try:
        client.login(config.user, config.password)
    except UnicodeEncodeError:
        client.plain_login(config.user, config.password)


@contextmanager
def session(config: MailboxConfig, *, timeout: float) -> Iterator[IMAPClient]:
    """``connect`` as a context manager that always logs out (or at least closes)."""
    client = connect(config, timeout=timeout)
    try:
        yield client
    finally:
        close(client)


def close(client: IMAPClient) -> None:
    """Log out politely if the connection still works; close the socket either way."""
    try:
        client.logout()
    except Exception:
        _shutdown(client)


def _shutdown(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception as exc:  # already closed: nothing left to release
        log.debug("shutdown after failure: %s", type(exc).__name__)


def select_readonly(client: IMAPClient, config: MailboxConfig) -> FolderInfo:
    """SELECT the folder read-only and report UIDVALIDITY and UIDNEXT (RFC 3501 6.3.1)."""
    try:
        info: dict[bytes, Any] = client.select_folder(config.folder, readonly=True)
    except IMAPClientError as exc:
        if isinstance(exc, imaplib.IMAP4.abort):
            raise
        raise MailboxUnavailable(
            f"{config.name}: folder {config.folder!r} cannot be selected on {config.where}"
        ) from None
    uidvalidity = info.get(b"UIDVALIDITY")
    if uidvalidity is None:
        raise MailboxUnavailable(f"{config.name}: {config.where} reported no UIDVALIDITY")
    uidnext = info.get(b"UIDNEXT")
    return FolderInfo(
        uidvalidity=int(uidvalidity),
        uidnext=int(uidnext) if uidnext is not None else None,
        exists=int(info.get(b"EXISTS", 0)),
    )


class Idler:
    """One IDLE session with a deadline (RFC 2177; imapclient ``idle_selector_example``).

    ``check`` returns True when the server reported new mail (EXISTS or RECENT). A socket
    that polls readable but yields no response is a closed connection, and is raised as
    ``ConnectionError`` for the caller to reconnect; the runner (mailbridge.runner) waits on
    the sockets of all its mailboxes at once and calls ``check`` on the readable ones.
    """

    def __init__(self, client: IMAPClient) -> None:
        self.client = client
        self.active = False

    def start(self) -> None:
        self.client.idle()
        self.active = True

    def check(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True if new mail was announced."""
        responses = self.client.idle_check(timeout=timeout)
        if not responses and _closed(self.client):
            raise ConnectionError("IMAP connection closed during IDLE")
        return any(
            len(response) > 1 and response[1] in (b"EXISTS", b"RECENT") for response in responses
        )

    def done(self) -> None:
        if self.active:
            self.active = False
            self.client.idle_done()


def _closed(client: IMAPClient) -> bool:
    """After an empty read: is the peer gone (EOF), or did data just arrive too late?"""
    sock = client.socket()
    try:
        ready, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    if not ready:
        return False
    if isinstance(sock, ssl.SSLSocket):
        return True  # TLS cannot be peeked at; a needless reconnect is harmless
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
