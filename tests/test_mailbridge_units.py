"""Issue 3: the bridge's pure parts, in microseconds: URLs, blobs, charsets, headers, machine
mail, fingerprints, parsing that never raises, sanitizing, threading rules, resync guard."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailbridge import oversized
from mailbridge.authresults import our_results
from mailbridge.automatic import classify
from mailbridge.charsets import decode_bytes, decode_words, known_codec, storable
from mailbridge.config import BridgeSettings, parse_imap_url
from mailbridge.dedup import REUSED_MESSAGE_ID, Identity, KnownRows
from mailbridge.errors import MailboxConfigError, MailboxUnavailable
from mailbridge.fingerprint import content_fingerprint
from mailbridge.headers import message_id, message_ids
from mailbridge.parse import parse_mail
from mailbridge.sync import ResyncGuard
from mailbridge.threads import CaseInfo, ThreadIndex, decide
from portal.message_ids import make_message_id
from portal.policy.references import references_in
from portal.sanitize import html_to_text, sanitize_html
from portal.storage import BlobStore
from tests.mailbridge_helpers import make_mail

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# -- configuration ----------------------------------------------------------------------------


def test_imap_url_is_decoded_and_the_password_never_shown() -> None:
    config = parse_imap_url(
        "ca", "imap://ca%40example.org:pw%20x%40%2F%25%2B@imap.example.org/Legal%20Notices"
    )
    assert (config.user, config.password) == ("ca@example.org", "pw x@/%+")
    assert (config.host, config.port, config.ssl, config.folder) == (
        "imap.example.org",
        143,
        False,
        "Legal Notices",
    )
    assert config.team == "trust_safety"
    assert "pw x" not in repr(config)
    assert config.where == "imap://imap.example.org:143/Legal Notices"


def test_imaps_defaults_to_993_and_inbox() -> None:
    config = parse_imap_url("appeals", "imaps://u:p@imap.example.org")
    assert (config.port, config.ssl, config.folder, config.team) == (993, True, "INBOX", "appeals")


@pytest.mark.parametrize(
    "url", ["http://u:secretpw@h/", "imap://h/", "imap://u:secretpw@h:port/", "imap://u:secretpw@/"]
)
def test_bad_imap_urls_name_the_mailbox_not_the_password(url: str) -> None:
    with pytest.raises(MailboxConfigError) as error:
        parse_imap_url("ca", url)
    assert str(error.value).startswith("ca: ")
    assert "secretpw" not in str(error.value)


def test_bridge_settings_read_prefixed_config_with_defaults() -> None:
    settings = BridgeSettings.from_config({"MAIL_MAX_BYTES": 1000, "MAIL_IDLE_SECONDS": 3600})
    assert settings.max_bytes == 1000
    assert settings.idle_seconds == 8 * 60  # capped below what servers and NATs tolerate
    assert BridgeSettings.from_config({}).max_bytes == 25 * 1024 * 1024


# -- blob store -------------------------------------------------------------------------------


def test_blobs_are_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    first = store.put(b"evidence")
    again = store.put(b"evidence")
    digest = hashlib.sha256(b"evidence").hexdigest()
    assert first == again
    assert (first.sha256, first.size) == (digest, 8)
    path = tmp_path / digest[:2] / digest[2:4] / digest
    assert path.read_bytes() == b"evidence"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not list(path.parent.glob(".tmp-*"))


def test_blob_paths_refuse_anything_but_a_hash(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        BlobStore(tmp_path).path_for("../../etc/passwd")


# -- charsets and headers ---------------------------------------------------------------------


def test_charset_fallbacks() -> None:
    assert decode_bytes("Grüße".encode(), "x-unknown") == "Grüße"
    assert decode_bytes("Grüße".encode("cp1252"), None) == "Grüße"
    assert decode_bytes(b"caf\xe9 \xff", "utf-8") == "caf\ufffd \ufffd"
    assert known_codec("base64") is None  # a bytes codec, not a charset
    assert known_codec("iso-8859-8-i") == "iso8859-8"
    assert decode_bytes("مرحبا بكم في".encode("cp1256")) == "مرحبا بكم في"


def test_storable_text_has_no_surrogates_or_nul() -> None:
    assert storable("a\x00b\udcc3\udca9") == "abé"


def test_encoded_words_are_joined_before_decoding() -> None:
    # One UTF-8 character split across two words: only byte-level joining decodes it.
    assert decode_words("=?utf-8?q?caf=C3?= =?utf-8?q?=A9?=") == "café"
    assert decode_words("Re: =?iso-8859-8-i?q?=F9=EC=E5=ED?= [x]") == "Re: שלום [x]"


def test_a_huge_references_header_keeps_the_last_hundred_ids_once_each() -> None:
    """40,000 ids (a hostile References header) used to take seconds per message: keeping
    them unique is linear now. The nearest ids, at the end, are the ones kept."""
    value = " ".join(f"<id{n % 30_000}@example.org>" for n in range(40_000))
    found = message_ids(value)
    assert found == [f"<id{n}@example.org>" for n in range(29_900, 30_000)]


def test_message_ids_are_normalised() -> None:
    assert message_id(" <abc@example.org>\r\n") == "<abc@example.org>"
    assert message_id("abc@example.org") == "<abc@example.org>"
    assert message_id("no id here") is None
    assert message_ids("<a@x> junk <b@x> <a@x>") == ["<a@x>", "<b@x>"]
    assert references_in("Re: [OA-2026-000123] and OA-2026-000124x") == ["OA-2026-000123"]
    # Typed in lower case, it is the same reference (threading and appeals agree on it).
    assert references_in("Re: [oa-2026-000123] again, OA-2026-000123") == ["OA-2026-000123"]


def test_only_our_servers_authentication_results_count() -> None:
    """More in test_mailbridge_authresults.py (issue 10)."""
    headers = [
        "mx.example.org; spf=pass (ok) smtp.mailfrom=x; dkim=fail; dkim=pass; dmarc=none",
        "evil.example; spf=pass; dkim=pass; dmarc=pass",
    ]
    verdicts = {"spf": "pass", "dkim": "pass", "dmarc": "none"}
    assert our_results(headers, "mx.example.org").verdicts == verdicts
    assert our_results(headers[::-1], "mx.example.org").verdicts == verdicts
    assert our_results(headers, None).verdicts == {}
    assert our_results([], "mx.example.org").verdicts == {}


# -- machine mail -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "sender", "auto"),
    [
        ({"Auto-Submitted": "no"}, "a@x.org", False),
        ({"Auto-Submitted": "auto-generated"}, "a@x.org", True),
        ({"Precedence": "junk"}, "a@x.org", True),
        ({"Precedence": "first-class"}, "a@x.org", False),
        ({"Return-Path": "<>"}, "a@x.org", True),
        ({}, "Postmaster@x.org", True),
    ],
)
def test_automatic_mail_signals(headers: dict[str, str], sender: str, auto: bool) -> None:
    result = classify(lambda name: [v for k, v in headers.items() if k == name], None, sender)
    assert result.auto_submitted is auto


# -- fingerprints -----------------------------------------------------------------------------


def test_fingerprint_ignores_transport_but_not_content() -> None:
    raw = make_mail("Same", message_id="<same@x>", body="From the start.\nLine two.")
    relayed = b"Received: from relay\r\nReturn-Path: <a@x>\r\n" + raw
    exported = raw.replace(b"\r\n", b"\n").replace(b"\nFrom the start", b"\n>From the start")
    changed = raw.replace(b"Line two.", b"Line 2.")
    assert content_fingerprint(raw) == content_fingerprint(relayed) == content_fingerprint(exported)
    assert content_fingerprint(raw) != content_fingerprint(changed)


# -- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"Subject: only a header",
        b"From: =?bogus?Q?x?= <\r\nContent-Type: multipart/mixed\r\n\r\n--\r\n",
        b"Content-Type: text/plain; charset=idna\r\n\r\n\xff\xff",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n" * 2000,
        b"Date: Mon, 99 Foo 99999 99:99:99 +9999\r\n\r\nbody",
    ],
)
def test_parse_never_raises_and_keeps_a_date(raw: bytes) -> None:
    mail = parse_mail(raw, arrived_at=NOW)
    assert mail.sent_at.tzinfo is not None
    assert "\x00" not in (mail.body_text or "")


def test_parse_reads_a_plain_message() -> None:
    raw = make_mail(
        "=?utf-8?b?0J/RgNC40LLQtdGC?=",
        sender="=?utf-8?q?Jos=C3=A9?= <jose@example.org>",
        to="ca@example.org, Other <o@example.org>",
        in_reply_to="<p@x>",
        references=["<a@x>", "<p@x>"],
    )
    mail = parse_mail(raw, arrived_at=NOW)
    assert (mail.sender, mail.sender_name, mail.subject) == ("jose@example.org", "José", "Привет")
    assert mail.recipients == ["ca@example.org", "o@example.org"]
    assert mail.thread_ids == ["<p@x>", "<a@x>"]
    assert mail.sent_at != NOW


def test_html_only_mail_gets_a_text_reading() -> None:
    raw = (
        b"From: a@example.org\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<p>First &amp; foremost</p><p>Second<script>x()</script></p>"
    )
    mail = parse_mail(raw, arrived_at=NOW)
    assert mail.body_text == "First & foremost\nSecond"
    assert mail.body_html == "<p>First &amp; foremost</p><p>Second</p>"


def test_sanitizer_policy() -> None:
    html = sanitize_html(
        '<a href="javascript:alert(1)">x</a><a href="https://w.org/" onmouseover="x()">w</a>'
        '<img src="cid:logo"><div style="background:url(https://t.example/)">d</div>'
    )
    assert "javascript" not in html
    assert "onmouseover" not in html
    assert "<img" not in html
    assert "style" not in html
    assert 'href="https://w.org/"' in html
    assert 'target="_blank"' in html
    assert 'class="external"' in html
    assert 'rel="noopener noreferrer nofollow"' in html
    assert html_to_text("<p>a</p><p>b<br>c</p>") == "a\nb\nc"


# -- threading rules --------------------------------------------------------------------------


def _index() -> ThreadIndex:
    index = ThreadIndex()
    index.add_case(CaseInfo(1, "OA-2026-000001", "trust_safety"))
    index.add_case(CaseInfo(2, "OA-2026-000002", "legal"))
    index.add_party(1, "party@example.org")
    index.add_party(2, "party@example.org")
    index.add_message("<stored@x>", 1, "inbound")
    return index


def _mail(subject: str, sender: str, **headers: str) -> bytes:
    return make_mail(subject, sender=sender, headers=headers)


@pytest.mark.parametrize(
    ("subject", "sender", "headers", "case_id", "linked"),
    [
        ("Re: [OA-2026-000001]", "Party+x@Example.org", {}, 1, None),
        ("Re: [OA-2026-000001]", "stranger@example.org", {}, None, 1),
        ("Re: [OA-2026-000002]", "party@example.org", {}, None, 2),  # another team's case
        ("Re: [OA-2026-999999]", "party@example.org", {}, None, None),  # no such case
        ("Re: hello", "party@example.org", {"In-Reply-To": "<stored@x>"}, 1, None),
        ("Re: hello", "stranger@example.org", {"In-Reply-To": "<stored@x>"}, None, 1),
        (
            "OA-2026-000001",
            "party@example.org",
            {"Authentication-Results": "mx; dmarc=fail"},
            None,
            1,
        ),
    ],
)
def test_threading_rules(
    subject: str, sender: str, headers: dict[str, str], case_id: int | None, linked: int | None
) -> None:
    mail = parse_mail(_mail(subject, sender, **headers), arrived_at=NOW, authserv_id="mx")
    decision = decide(mail, _index(), team="trust_safety", secret="s")
    assert (decision.case_id, decision.linked_case_id) == (case_id, linked)
    assert (decision.flag is not None) == (linked is not None or case_id is not None)
    if case_id is not None:  # a party's address, but nothing proves the party wrote it
        assert (decision.verified, decision.flag) == (False, NOT_VERIFIED)


NOT_VERIFIED = (
    "sender not verified: the From is a party's address, but nothing proves the party wrote "
    "it (no DMARC pass at our mail server, no reply to our mail to that address)"
)


def test_a_signed_id_is_trusted_only_for_its_recipient() -> None:
    signed = make_message_id(secret="s", case_id=1, recipient="who@example.org", domain="p.org")
    index = _index()
    ours = parse_mail(make_mail("x", sender="Who@example.org", in_reply_to=signed), arrived_at=NOW)
    other = parse_mail(
        make_mail("x", sender="else@example.org", in_reply_to=signed), arrived_at=NOW
    )
    assert decide(ours, index, team="trust_safety", secret="s").case_id == 1
    assert decide(other, index, team="trust_safety", secret="s").case_id is None
    assert decide(ours, index, team="trust_safety", secret="wrong").case_id is None


def test_resync_guard_stops_an_endless_uidvalidity_loop() -> None:
    guard = ResyncGuard(max_resyncs=2)
    guard.record("ca")
    guard.record("ca")
    with pytest.raises(MailboxUnavailable, match="ca: UIDVALIDITY changed 3 times"):
        guard.record("ca")


# -- de-duplication rules ---------------------------------------------------------------------


def test_dedup_rules() -> None:
    known = KnownRows()
    known.add(1, uidvalidity=7, uid=3, raw_sha256="a", content_sha256="f", dedup_key="<m@x>")
    same_uid = Identity(uid=3, raw_sha256="b", content_sha256="g", message_id=None)
    relayed = Identity(uid=9, raw_sha256="b", content_sha256="f", message_id="<m@x>")
    reused = Identity(uid=9, raw_sha256="c", content_sha256="h", message_id="<m@x>")
    assert known.duplicate_of(same_uid, 7) == 1
    assert known.duplicate_of(relayed, 7) == 1
    assert known.duplicate_of(reused, 7) is None
    assert known.dedup_key(reused) == ("sha256:c", REUSED_MESSAGE_ID)
    assert known.dedup_key(Identity(None, "d", "i", None)) == ("sha256:d", None)
    # Renumbered by the server: the row moves to the new location, once.
    assert known.moved(1, 8, 4)
    known.relocate(1, 8, 4)
    assert not known.moved(1, 8, 5)
    placeholder = Identity(uid=5, raw_sha256=None, content_sha256=None, message_id="<m@x>")
    assert known.duplicate_of(placeholder, 8) == 1


@pytest.mark.parametrize(
    ("start", "header"),
    [
        (
            b"Subject: a\r\nFrom: b@example.net\r\n\r\nbody\r\n\r\nmore",
            b"Subject: a\r\nFrom: b@example.net",
        ),
        (b"Subject: bare LF\n\nbody", b"Subject: bare LF"),
        (
            b"Subject: a header longer than what was read",
            b"Subject: a header longer than what was read",
        ),
    ],
    ids=["crlf", "lf", "unfinished"],
)
def test_the_header_of_an_oversized_message_is_read_from_its_start(
    start: bytes, header: bytes
) -> None:
    assert oversized.header_of(start) == header


def test_a_streamed_blob_is_stored_like_a_whole_one_and_a_failure_leaves_nothing(
    tmp_path: Path,
) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = bytes(range(256)) * 1000
    streamed = store.put_stream(data[n : n + 4096] for n in range(0, len(data), 4096))
    assert (streamed.sha256, streamed.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert store.read(streamed.sha256) == data
    assert stat.S_IMODE(store.path_for(streamed.sha256).stat().st_mode) == 0o640
    assert store.put_stream([data]) == streamed  # again: the same blob, nothing else

    def broken() -> Iterator[bytes]:
        yield b"the first chunk"
        raise ConnectionResetError

    with pytest.raises(ConnectionResetError):
        store.put_stream(broken())
    assert not list((tmp_path / "blobs").rglob(".tmp-*"))
    assert len([p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]) == 1
