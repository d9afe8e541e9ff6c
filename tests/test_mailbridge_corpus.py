"""Issue 3: the mail the world sends never stops the bridge and is never lost.

Two corpora go through the real Dovecot: Python's own email test messages (all of them, in
one mailbox) and our ``tests/mail/*.eml`` collection of awkward mail (one test per file).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from portal.extensions import db
from portal.models import Attachment, Case, Message
from portal.storage import BlobStore
from tests.mailbridge_helpers import append_all, crlf, inbound, sync
from tests.servers.fixtures import ImapAccount

MAIL_DIR = Path(__file__).parent / "mail"
CORPUS = sorted(MAIL_DIR.glob("*.eml"))


@pytest.fixture
def app_config(imap_account: ImapAccount) -> dict[str, Any]:
    # The corpus was received by mx1.example.org: its Authentication-Results are ours.
    return {"IMAP_CA_URL": imap_account.url(), "MAIL_AUTHSERV_ID": "mx1.example.org"}


def stdlib_corpus() -> list[Path]:
    """``Lib/test/test_email/data/msg_*.txt``; Debian ships it in libpython3.x-testsuite."""
    try:
        import test.test_email  # noqa: PLC0415 - optional on purpose
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("Python's test package is missing on CI", pytrace=False)
        pytest.skip("Python's test package (test.test_email) is not installed here")
    files = sorted((Path(test.test_email.__file__).parent / "data").glob("msg_*.txt"))
    if not files:
        pytest.skip("Python's email test corpus is empty on this machine")
    return files


def server_copies(account: ImapAccount) -> dict[int, bytes]:
    with account.client() as client:
        client.select_folder("INBOX", readonly=True)
        fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
    return {uid: data[b"BODY[]"] for uid, data in fetched.items()}


def test_every_message_of_pythons_email_corpus_is_stored_byte_for_byte(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount
) -> None:
    files = stdlib_corpus()
    raws = [crlf(path.read_bytes()) for path in files]
    append_all(imap_account, raws)

    result = sync(runner)

    assert result.exit_code == 0, result.output
    stored = inbound()
    assert len(stored) == len(files)
    assert sorted(m.raw_sha256 or "" for m in stored) == sorted(
        hashlib.sha256(raw).hexdigest() for raw in raws
    )
    blobs = BlobStore(Path(app.config["BLOB_DIR"]))
    for message in stored:
        assert hashlib.sha256(blobs.read(message.raw_sha256 or "")).hexdigest() == (
            message.raw_sha256
        )
    # Five files share one Message-ID with different content: all kept, and staff are told.
    reused = [m for m in stored if "already used by a different message" in (m.flag_reason or "")]
    assert reused
    assert all(m.dedup_key == f"sha256:{m.raw_sha256}" for m in reused)
    # A second run finds nothing new.
    assert sync(runner).output.startswith("ca: 0 new")


Check = Callable[[Message], None]


def _body(text: str) -> Check:
    def check(message: Message) -> None:
        assert text in (message.body_text or "")

    return check


def _subject(text: str) -> Check:
    def check(message: Message) -> None:
        assert message.subject == text

    return check


def _sender(address: str | None) -> Check:
    def check(message: Message) -> None:
        assert message.sender == address

    return check


def _flags(*, auto: bool = False, bounce: bool = False, flagged: str | None = None) -> Check:
    def check(message: Message) -> None:
        assert (message.auto_submitted, message.bounce) == (auto, bounce)
        if flagged:
            assert flagged in (message.flag_reason or "")

    return check


def _html_is_safe(message: Message) -> None:
    html = (message.body_html or "").lower()
    for hostile in ("<script", "javascript:", "onload", "onclick", "onerror", "<iframe", "<form"):
        assert hostile not in html
    for hostile in ("<img", "<svg", "<object", "<meta", "<base", "<style", "data:"):
        assert hostile not in html
    assert 'class="external"' in html


def _attachments(*names: str) -> Check:
    def check(message: Message) -> None:
        stored = db.session.scalars(
            select(Attachment).where(Attachment.message_id == message.id)
        ).all()
        assert {a.filename for a in stored} >= set(names)

    return check


# What each file must come out as, beyond "stored once, byte for byte, on a case".
EXPECTED: dict[str, list[Check]] = {
    "8bit-headers-raw-utf8.eml": [_body("Здравствуйте")],
    "attachment-rfc2231-filename.eml": [_attachments("تقرير الشرطة.pdf", "Скриншот №1.png")],
    "authentication-results-fail.eml": [_flags(flagged="DMARC")],
    "auto-reply-out-of-office.eml": [_flags(auto=True)],
    "bad-charset-name.eml": [_body("“you will regret this”")],
    "bounce-dsn.eml": [_flags(auto=True, bounce=True)],
    "bounce-rfc822-headers.eml": [_flags(auto=True, bounce=True)],
    "html-only-with-script.eml": [_html_is_safe],
    "inline-image-cid.eml": [_attachments("image.png")],
    "iso-8859-8-i-hebrew.eml": [_subject("ערעור על חסימה"), _body("שלום")],
    "malformed-from-header.eml": [_sender("broken@example.net")],
    "nested-multipart-with-attachment.eml": [_attachments("police report.pdf")],
    "no-from.eml": [_sender("bounces+x7@sender.example.net")],
    # Dovecot turns NUL into 0x80 on APPEND; either way no NUL may reach the database.
    "null-bytes-in-body.eml": [_body("has NUL bytes")],
    "precedence-bulk-list.eml": [_flags(auto=True)],
    "rfc2047-split-display-name.eml": [lambda m: _check_name(m, "Анна Соколова")],
    "truncated-multipart.eml": [_flags(flagged="damaged")],
    "windows-1256-body-no-charset-declared.eml": [_body("مرحبا")],
    "x-autorespond.eml": [_flags(auto=True)],
}


def _check_name(message: Message, name: str) -> None:
    assert message.sender_name == name


@pytest.mark.parametrize("path", CORPUS, ids=[path.name for path in CORPUS])
def test_awkward_mail_is_stored_once_and_filed(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, path: Path
) -> None:
    imap_account.append(path.read_bytes())

    result = sync(runner)

    assert result.exit_code == 0, result.output
    (message,) = inbound()
    (server_copy,) = server_copies(imap_account).values()
    # Byte for byte as the server holds it (Dovecot itself rewrites bare LF and NUL).
    assert message.raw_sha256 == hashlib.sha256(server_copy).hexdigest()
    assert BlobStore(Path(app.config["BLOB_DIR"])).read(message.raw_sha256 or "") == server_copy
    assert message.case_id is not None
    assert db.session.get(Case, message.case_id) is not None
    assert "\x00" not in (message.body_text or "")
    for check in EXPECTED.get(path.name, []):
        check(message)
    assert sync(runner).output.startswith("ca: 0 new")
