"""A real SMTP server for tests (aiosmtpd in a background thread), with switchable outages."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPProtocol
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.servers import HOST, free_port, port_open, wait_port_closed


@dataclass
class ReceivedMail:
    """One message as the server got it: the envelope and the raw bytes after DATA."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    smtputf8: bool = False  # the client asked for SMTPUTF8 (RFC 6531)

    def message(self) -> EmailMessage:
        """The message parsed with the modern policy, so headers come back decoded."""
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _Outage:
    """The reply that replaces a normal RCPT/DATA answer while the server "refuses"."""

    code: int
    text: str

    def reply(self) -> str:
        return f"{self.code} {self.text}"


@dataclass
class _Handler:
    """aiosmtpd handler: stores messages, or refuses them while an outage is set."""

    server: SmtpServer
    outage: _Outage | None = field(default=None)
    # Drop the connection after taking this many messages' data, before answering: the
    # server has the mail, the sender cannot know it.
    cut_after_data: int = 0

    async def handle_RCPT(
        self,
        server: SMTPProtocol,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.outage is not None:
            return self.outage.reply()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPProtocol, session: Session, envelope: Envelope) -> str:
        if self.outage is not None:
            return self.outage.reply()
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        self.server._received(
            ReceivedMail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=[str(rcpt) for rcpt in envelope.rcpt_tos],
                data=content,
                smtputf8=bool(envelope.smtp_utf8),
            )
        )
        if self.cut_after_data > 0:
            self.cut_after_data -= 1
            if server.transport is not None:
                server.transport.abort()
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server on 127.0.0.1 (no TLS) that records what it is sent. It offers
    SMTPUTF8 unless made with ``smtputf8=False``.

    ``stop()`` closes the port entirely (connections are refused) and ``start()`` opens it
    again on the same port. AUTH PLAIN/LOGIN is offered without TLS and accepts any
    credentials, recording them in ``logins``, so apps configured with a username still work.
    """

    host: str
    port: int
    messages: list[ReceivedMail]

    def __init__(self, port: int | None = None, *, smtputf8: bool = True) -> None:
        self.smtputf8 = smtputf8
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.messages = []
        self.logins: list[tuple[str, str]] = []
        self._cond = threading.Condition()
        self._handler = _Handler(self)
        self._controller: Controller | None = None

    def _received(self, mail: ReceivedMail) -> None:
        """Called from the server thread: append and wake ``wait_for``."""
        with self._cond:
            self.messages.append(mail)
            self._cond.notify_all()

    def _authenticate(
        self, server: SMTPProtocol, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """Accept any credentials: the tests are about mail flow, not SMTP passwords."""
        if isinstance(data, LoginPassword):
            with self._cond:
                self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=True)

    def start(self) -> None:
        """Listen on ``port`` (the same one after a stop)."""
        if self._controller is not None:
            return
        controller = Controller(
            self._handler,
            hostname=self.host,
            port=self.port,
            server_hostname="smtp.test",
            ready_timeout=10.0,
            authenticator=self._authenticate,
            auth_require_tls=False,
            auth_required=False,
            enable_SMTPUTF8=self.smtputf8,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Close the listener and every session, so connecting is refused. Safe to repeat."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
        wait_port_closed(self.host, self.port)

    @property
    def running(self) -> bool:
        """Whether the server currently accepts connections."""
        return self._controller is not None and port_open(self.host, self.port)

    def refuse(self, code: int = 451, text: str = "4.3.0 try again later") -> None:
        """Answer every following RCPT and DATA with ``code text``: an outage that still
        accepts connections."""
        self._handler.outage = _Outage(code, text)

    def accept(self) -> None:
        """End an outage started by ``refuse``, and any ``cut_after_data``."""
        self._handler.outage = None
        self._handler.cut_after_data = 0

    def cut_after_data(self, times: int = 1) -> None:
        """Take the next ``times`` messages, then drop the connection instead of saying so."""
        self._handler.cut_after_data = times

    def clear(self) -> None:
        """Forget received messages and logins."""
        with self._cond:
            self.messages.clear()
            self.logins.clear()

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMail]:
        """Block until at least ``count`` messages arrived and return a copy of them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = [
                        f"{m.mail_from} -> {m.rcpt_tos}: {m.message()['Subject']!r}"
                        for m in self.messages
                    ]
                    raise AssertionError(
                        f"expected at least {count} message(s) on SMTP {self.host}:{self.port} "
                        f"within {timeout}s, got {len(self.messages)}: {got}"
                    )
                self._cond.wait(remaining)
            return list(self.messages)


class SilentServer:
    """A server that accepts TCP connections and never says a word: the SMTP server that
    hung a web request for minutes when mail was sent inside it."""

    def __init__(self) -> None:
        self.host = HOST
        self.port = free_port()
        self.connections = 0
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server((self.host, self.port))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="silent-smtp")
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._sockets.append(conn)  # held open, never answered

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._sockets:
            conn.close()
        self._listener.close()
