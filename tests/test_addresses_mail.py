"""Issue 10 through the real mail path (Dovecot in, aiosmtpd out): internationalised senders are
filed and answered (section 2), and no spelling or look-alike of a locked-out reporter's
address gets their mail into a queue (section 6).

Seen: the bridge stored mail from ``josé@example.com`` and ``用户@例子.广告`` but filed it
nowhere; 9 of 28 spellings of a locked-out reporter's address got into the queue instead of
quarantine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from mailbridge.headers import addresses_in
from portal.addresses import canonical_address, mail_address
from portal.extensions import db
from portal.models import Case, Lockout, Message, OutboundMail, Reporter
from portal.models.base import utcnow
from portal.policy.mail import MailPurpose
from portal.services.cases import find_or_create_reporter
from tests.mailbridge_helpers import append_all, inbound, sync
from tests.servers.fixtures import ImapAccount
from tests.servers.smtp import SmtpServer

INTERNATIONAL = [
    "josé@example.com",
    "用户@例子.广告",
    "jose@exämple.com",
    "x@xn--bcher-kva.example",
    "مريم@مثال.إختبار",
    "שרה@example.co.il",
]

# A locked-out reporter writes as jane.doe@gmail.com. Every spelling here must end in
# quarantine; the first nine are the ones that escaped before this issue.
ESCAPED = [
    "jane.doe@gmail.com.",
    "jane.doe@gmail.com\u3002",
    "jane..doe@gmail.com",
    ".jane.doe@gmail.com",
    "jane\u200b.doe@gmail.com",
    "=?utf-8?q?jane.doe?=@gmail.com",
    "jane.doe@gma\u0131l.com",
    "JANE.DOE@GMA\u0130L.COM",
    "janedoe@xn--gmil-6na.com",
]
SPELLINGS = [
    *ESCAPED,
    "jane.doe@gmail.com",
    "Jane.Doe@GMAIL.COM",
    "janedoe@gmail.com",
    "janedoe+appeal@gmail.com",
    "jane.doe+x+y@gmail.com",
    "j.a.n.e.d.o.e@googlemail.com",
    "JANEDOE@GoogleMail.com",
    '"jane.doe"@gmail.com',
    "jane.doe.@gmail.com",
    "\u200ejane.doe@gmail.com",
    "jane.doe\u202e@gmail.com",
    "jane\u2060doe@gmail.com",
    "jane.doe@gma\u00adil.com",
    "=?UTF-8?B?amFuZS5kb2U=?=@gmail.com",
    "\uff2a\uff21\uff2e\uff25\uff0e\uff24\uff2f\uff25@\uff47\uff4d\uff41\uff49\uff4c.com",
    "jane.doe@gm\u0430il.com",
    "jane.doe@grnail.com",
    "jane.doe@googlemai1.com",
    "j\u0430ne.doe@gmail.com",
]
LOOKALIKES = {
    "jane.doe@gma\u0131l.com",
    "JANE.DOE@GMA\u0130L.COM",
    "janedoe@xn--gmil-6na.com",
    "jane.doe@gm\u0430il.com",
    "jane.doe@grnail.com",
    "jane.doe@googlemai1.com",
    "j\u0430ne.doe@gmail.com",
}


@pytest.mark.parametrize(
    ("header", "found"),
    [
        ("Broken <用户@例子.广告 (unclosed", ["用户@例子.广告"]),
        ('"José, <josé@exämple.com>', ["josé@exämple.com"]),
        ("مريم <مريم@مثال.إختبار", ["مريم@مثال.إختبار"]),
    ],
)
def test_internationalised_addresses_are_found_in_headers_the_parser_refuses(
    header: str, found: list[str]
) -> None:
    assert addresses_in(header) == found


def raw_mail(
    sender: str,
    subject: str = "A complaint",
    body: str = "Please look at this.",
    *,
    headers: Sequence[str] = (),
) -> bytes:
    """Mail as an SMTPUTF8 client sends it (RFC 6532): header fields in UTF-8, as typed."""
    lines = [
        f"From: {sender}",
        "To: ca@example.org",
        f"Subject: {subject}",
        f"Date: {format_datetime(utcnow())}",
        f"Message-ID: <{time.monotonic_ns()}.{os.getpid()}@mail.example.net>",
        *headers,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


@pytest.fixture
def app_config(imap_account: ImapAccount, smtp: SmtpServer) -> dict[str, Any]:
    return {"IMAP_CA_URL": imap_account.url(), "MAIL_SERVER": smtp.host, "MAIL_PORT": smtp.port}


def lock_out(address: str) -> Lockout:
    reporter = find_or_create_reporter(db.session, address)
    now = utcnow()
    lockout = Lockout(
        reporter_id=reporter.id,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=30),
        proposed_days=30,
    )
    db.session.add(lockout)
    db.session.commit()
    return lockout


def cases() -> int:
    return db.session.scalar(select(func.count(Case.id))) or 0


def test_internationalised_senders_are_filed_and_acknowledged(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    append_all(
        imap_account,
        [raw_mail(sender, f"Report from {sender}", "مرحبا, שלום") for sender in INTERNATIONAL],
    )
    result = sync(runner)
    assert result.exit_code == 0, result.output

    rows = inbound()
    assert [row.sender for row in rows] == INTERNATIONAL
    for row in rows:
        assert row.case_id is not None, (row.sender, row.flag_reason)
        assert not row.quarantined, row.sender
        assert row.flag_reason is None, row.sender
        case = db.session.get_one(Case, row.case_id)
        requester = db.session.get_one(Reporter, case.requester_id)
        assert requester.canonical_email == canonical_address(row.sender or "")
        (ack,) = db.session.scalars(
            select(OutboundMail).where(
                OutboundMail.case_id == case.id, OutboundMail.purpose == MailPurpose.ACKNOWLEDGEMENT
            )
        )
        assert ack.recipients == [mail_address(row.sender or "")]


def test_an_address_in_encoded_words_is_read_as_the_sender_means_it(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    """Python's own ``email`` package writes josé@example.com as
    ``=?utf-8?q?jos=C3=A9?=@example.com`` (RFC 2047 forbids it, mail clients show it
    decoded): the sender is josé, whom the acknowledgement must reach."""
    append_all(
        imap_account,
        [
            raw_mail("=?utf-8?q?Jos=C3=A9?= <=?utf-8?q?jos=C3=A9?=@example.com>"),
            raw_mail("=?utf-8?q?a=40b?=@example.com", "Two at-signs once decoded"),
        ],
    )
    assert sync(runner).exit_code == 0
    jose, odd = inbound()
    assert (jose.sender, jose.sender_name) == ("josé@example.com", "José")
    (ack,) = db.session.scalars(select(OutboundMail).where(OutboundMail.case_id == jose.case_id))
    assert ack.recipients == ["josé@example.com"]
    assert odd.sender == "=?utf-8?q?a=40b?=@example.com"  # no address once decoded: as written


def test_an_idn_domain_sender_is_answered_in_ascii(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    """An internationalised domain with an ASCII local part needs no SMTPUTF8: the
    acknowledgement goes out at once, to the A-labels of the domain."""
    append_all(imap_account, [raw_mail("jose@exämple.com"), raw_mail("x@xn--bcher-kva.example")])
    assert sync(runner).exit_code == 0
    delivered = sorted(rcpt for mail in smtp.wait_for(2) for rcpt in mail.rcpt_tos)
    assert delivered == ["jose@xn--exmple-cua.com", "x@xn--bcher-kva.example"]


def test_a_reply_from_the_ascii_spelling_of_the_domain_threads_into_its_case(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    """The acknowledgement went to jose@xn--exmple-cua.com; the answer may come back from
    either spelling of the domain, and is the same party."""
    append_all(imap_account, [raw_mail("jose@exämple.com", "Harassment on my talk page")])
    assert sync(runner).exit_code == 0
    (first,) = inbound()
    case_id = first.case_id
    reference = db.session.get_one(Case, case_id).reference
    (ack,) = smtp.wait_for(1)
    reply = raw_mail(
        "José <jose@xn--exmple-cua.com>",
        f"Re: [{reference}] We received your message",
        "More evidence.",
        headers=[f"In-Reply-To: {ack.message()['Message-ID']}"],
    )
    append_all(imap_account, [reply])
    assert sync(runner).exit_code == 0
    rows = inbound()
    assert len(rows) == 2
    assert rows[1].case_id == case_id
    assert rows[1].flag_reason is None
    assert cases() == 1


@pytest.mark.parametrize("batch", [SPELLINGS])
def test_no_spelling_of_a_locked_out_address_reaches_a_queue(
    app: Flask,
    runner: FlaskCliRunner,
    imap_account: ImapAccount,
    smtp: SmtpServer,
    batch: list[str],
) -> None:
    lock_out("jane.doe@gmail.com")
    append_all(imap_account, [raw_mail(sender, f"Complaint {i}") for i, sender in enumerate(batch)])
    assert sync(runner).exit_code == 0

    rows = inbound()
    assert len(rows) == len(batch) == 28
    escaped = [row.sender for row in rows if not row.quarantined or row.case_id is not None]
    assert escaped == []
    assert cases() == 0
    assert db.session.scalar(select(func.count(OutboundMail.id))) == 0
    assert smtp.messages == []
    for row in rows:
        flagged = "look" in (row.flag_reason or "")
        assert flagged == (row.sender in LOOKALIKES), (row.sender, row.flag_reason)


def test_a_lookalike_of_a_large_provider_is_quarantined_and_flagged(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    """Nobody is locked out: a gmaıl.com sender is still an imitation, read by staff first."""
    append_all(imap_account, [raw_mail("bob@gma\u0131l.com"), raw_mail("bob@gmail.com", "Genuine")])
    assert sync(runner).exit_code == 0
    lookalike, genuine = inbound()
    assert lookalike.quarantined
    assert lookalike.case_id is None
    assert lookalike.flag_reason is not None
    assert "gma\u0131l.com looks like gmail.com" in lookalike.flag_reason
    assert not genuine.quarantined
    assert genuine.case_id is not None
    assert genuine.flag_reason is None


def test_a_lookalike_of_a_locked_out_domain_is_quarantined_without_naming_it(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    lock_out("jane@small-association.example")
    append_all(
        imap_account,
        [
            raw_mail("bob@sm\u0430ll-\u0430ssoci\u0430tion.example"),  # Cyrillic a
            raw_mail("bob@other.example", "Unrelated"),
        ],
    )
    assert sync(runner).exit_code == 0
    lookalike, other = inbound()
    assert lookalike.quarantined
    assert lookalike.case_id is None
    assert "looks like the domain of a locked-out reporter" in (lookalike.flag_reason or "")
    assert "small-association" not in (lookalike.flag_reason or "")
    assert not other.quarantined
    assert other.case_id is not None


def test_quarantined_lookalikes_are_listed_for_staff(
    app: Flask,
    runner: FlaskCliRunner,
    imap_account: ImapAccount,
    smtp: SmtpServer,
    auth: Any,
    client: Any,
    create_staff: Any,
) -> None:
    append_all(imap_account, [raw_mail("bob@gma\u0131l.com", "Look at this")])
    assert sync(runner).exit_code == 0
    auth.login(create_staff("trust_safety"))
    page = client.get("/staff/quarantine").get_data(as_text=True)
    assert "bob@gma\u0131l.com" in page
    assert "looks like gmail.com" in page
    (row,) = db.session.scalars(select(Message))
    assert row.quarantined
