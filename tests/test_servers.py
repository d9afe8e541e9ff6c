"""Smoke tests proving the real test servers in tests/servers behave like real servers."""

from __future__ import annotations

import os
import pwd
import smtplib
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import psycopg
import pytest
from flask import Flask, request

from tests.servers import port_open
from tests.servers.dovecot import DovecotServer
from tests.servers.postgres import PostgresServer, scratch_root, start_postgres
from tests.servers.smtp import SmtpServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from tests.servers.browser import LiveServer
    from tests.servers.fixtures import ImapAccount


def _raw(subject: str, body: str = "Hello.") -> bytes:
    """A small RFC 5322 message with CRLF line endings, as IMAP expects."""
    msg = EmailMessage()
    msg["From"] = "Sender <sender@example.org>"
    msg["To"] = "legal@example.org"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '.')}@example.org>"
    msg.set_content(body)
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# -- IMAP ------------------------------------------------------------------------------------


def test_imap_append_and_fetch_by_uid(imap_account: ImapAccount) -> None:
    first = imap_account.append(_raw("first notice"))
    second = imap_account.append(_raw("second notice"))
    assert second > first

    with imap_account.client() as client:
        client.select_folder("INBOX", readonly=True)
        assert sorted(client.search("ALL")) == [first, second]
        fetched = client.fetch([first, second], ["BODY.PEEK[]", "FLAGS"])
    assert b"Subject: first notice" in fetched[first][b"BODY[]"]
    assert b"Subject: second notice" in fetched[second][b"BODY[]"]
    # PEEK must not mark the message as read.
    assert b"\\Seen" not in fetched[first][b"FLAGS"]


def test_imap_url_round_trips_credentials(imap_account: ImapAccount) -> None:
    parts = urlsplit(imap_account.url("Legal Notices"))
    assert parts.scheme == "imap"
    assert (parts.hostname, parts.port) == (imap_account.server.host, imap_account.server.port)
    assert unquote(parts.username or "") == imap_account.user
    assert unquote(parts.password or "") == imap_account.password
    assert unquote(parts.path.lstrip("/")) == "Legal Notices"


def test_imap_idle_sees_mail_from_another_connection(imap_account: ImapAccount) -> None:
    with imap_account.client() as watcher:
        watcher.select_folder("INBOX")
        watcher.idle()
        try:
            started = time.monotonic()
            imap_account.append(_raw("arrives during idle"))
            responses: list[tuple[object, ...]] = []
            while time.monotonic() - started < 2.0 and not any(
                r[1] == b"EXISTS" for r in responses if len(r) > 1
            ):
                responses += watcher.idle_check(timeout=0.2)
        finally:
            watcher.idle_done()
    assert (1, b"EXISTS") in responses, responses


@pytest.mark.parametrize("folder", ["INBOX", "Archive"])
def test_imap_recreate_folder_changes_uidvalidity(imap_account: ImapAccount, folder: str) -> None:
    imap_account.append(_raw("kept one"), folder)
    imap_account.append(_raw("kept two"), folder)
    before = imap_account.uidvalidity(folder)

    imap_account.recreate_folder(folder)

    assert imap_account.uidvalidity(folder) != before
    with imap_account.client() as client:
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        bodies = [d[b"BODY[]"] for d in client.fetch(uids, ["BODY.PEEK[]"]).values()]
    assert len(bodies) == 2
    assert any(b"Subject: kept one" in body for body in bodies)
    assert any(b"Subject: kept two" in body for body in bodies)


def test_imap_restart_keeps_mail_and_accepts_new_logins(
    dovecot: DovecotServer, imap_account: ImapAccount
) -> None:
    uid = imap_account.append(_raw("survives restart"))
    old = imap_account.client()
    try:
        dovecot.stop()
        dovecot.stop()  # idempotent
        with pytest.raises(ConnectionRefusedError):
            imap_account.client()
        dovecot.start()
        # The old session died with the server: a real outage, not a pause.
        with pytest.raises(Exception):  # noqa: B017, PT011 - imaplib's abort or an OSError
            old.noop()
    finally:
        old.shutdown()

    dovecot.restart()
    with imap_account.client() as client:
        client.select_folder("INBOX", readonly=True)
        assert client.search("ALL") == [uid]


def test_imap_wrong_password_is_rejected(imap_account: ImapAccount) -> None:
    from imapclient.exceptions import LoginError

    with pytest.raises(LoginError):
        imap_account.server.client(imap_account.user, "wrong password")


# -- SMTP ------------------------------------------------------------------------------------


def _send(server: SmtpServer, subject: str) -> None:
    msg = EmailMessage()
    msg["From"] = "portal@example.org"
    msg["To"] = "reporter@example.net"
    msg["Subject"] = subject
    msg.set_content("We received your notice.")
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.send_message(msg)


def test_smtp_receives_mail(smtp: SmtpServer) -> None:
    _send(smtp, "Your notice — received")
    (mail,) = smtp.wait_for(1)
    assert mail.mail_from == "portal@example.org"
    assert mail.rcpt_tos == ["reporter@example.net"]
    message = mail.message()
    assert message["Subject"] == "Your notice — received"
    assert "We received your notice." in message.get_content()


def test_smtp_wait_for_times_out_clearly(smtp: SmtpServer) -> None:
    with pytest.raises(AssertionError, match="expected at least 1 message"):
        smtp.wait_for(1, timeout=0.2)


def test_smtp_refuse_then_accept(smtp: SmtpServer) -> None:
    smtp.refuse()
    with pytest.raises(
        (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPResponseException)
    ) as excinfo:
        _send(smtp, "during outage")
    assert "451" in str(excinfo.value)
    assert smtp.messages == []

    smtp.accept()
    _send(smtp, "after outage")
    assert smtp.wait_for(1)[0].message()["Subject"] == "after outage"


def test_smtp_stop_refuses_connections_and_start_recovers(smtp: SmtpServer) -> None:
    port = smtp.port
    smtp.stop()
    smtp.stop()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        _send(smtp, "nobody listening")
    smtp.start()
    assert smtp.port == port
    _send(smtp, "back again")
    assert smtp.wait_for(1)[0].message()["Subject"] == "back again"


def test_smtp_auth_is_accepted_and_recorded(smtp: SmtpServer) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=5) as client:
        client.login("portal", "secret")
        client.sendmail("portal@example.org", ["a@example.net"], b"Subject: x\r\n\r\ny\r\n")
    assert smtp.wait_for(1)[0].rcpt_tos == ["a@example.net"]
    assert smtp.logins == [("portal", "secret")]


# -- Browser ---------------------------------------------------------------------------------


@pytest.fixture
def app() -> Flask:
    """A tiny form app standing in for the portal (the lead's conftest defines the real one)."""
    flask_app = Flask(__name__)

    @flask_app.get("/")
    def form() -> str:
        return (
            "<!doctype html><title>Form</title>"
            '<form method="post" action="/submit">'
            '<label>Name <input name="name" id="name"></label>'
            '<button type="submit">Send</button></form>'
        )

    @flask_app.post("/submit")
    def submit() -> str:
        name = request.form.get("name", "")
        return f"<!doctype html><title>Done</title><p id='result'>Thanks, {len(name)} chars</p>"

    return flask_app


def test_browser_fills_and_submits_a_form(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    page.fill("#name", "Ada Lovelace")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/submit")
    assert page.text_content("#result") == "Thanks, 12 chars"
    assert page.title() == "Done"


def test_postgres_cluster_is_private_and_stops_by_its_pid(postgresql: PostgresServer) -> None:
    """The session's cluster: never root's, reachable only with its password, on its own
    port; a second cluster beside it stops by its PID, frees its port, and stops twice."""
    with postgresql.connect() as connection:
        assert connection.execute("SELECT current_setting('fsync')").fetchone() == ("off",)
    if os.geteuid() == 0:
        assert postgresql.data_dir.stat().st_uid == pwd.getpwnam("postgres").pw_uid
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host=postgresql.host,
            port=postgresql.port,
            user="portal",
            password="wrong",
            dbname="postgres",
            connect_timeout=5,
        ).close()

    other = start_postgres(Path(tempfile.mkdtemp(prefix="pytest-postgres-", dir=scratch_root())))
    try:
        assert other.port != postgresql.port
        other.stop()
        assert not other.running()
        assert not port_open(other.host, other.port)
        other.stop()  # idempotent
    finally:
        other.remove()
