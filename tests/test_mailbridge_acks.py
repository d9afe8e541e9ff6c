"""Issue 3: acknowledgements for cases opened by mail, received by a real SMTP server, and the
loop guards that keep them from automatic mail, bounces, forgeries and bursts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Case, Lockout, OutboundMail
from portal.models.base import utcnow
from portal.services.cases import find_or_create_reporter
from tests.mailbridge_helpers import append_all, crlf, inbound, make_mail, sync
from tests.servers.fixtures import ImapAccount
from tests.servers.smtp import SmtpServer


@pytest.fixture
def app_config(imap_account: ImapAccount, smtp: SmtpServer) -> dict[str, Any]:
    return {
        "IMAP_CA_URL": imap_account.url(),
        "MAIL_SERVER": smtp.host,
        "MAIL_PORT": smtp.port,
        "ACKS_PER_ADDRESS_PER_DAY": 2,
    }


def case_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Case)) or 0


def test_a_new_case_by_mail_is_acknowledged_with_its_reference(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    imap_account.append(
        make_mail(
            "Harassment on my talk page",
            sender="Nadia <nadia@example.net>",
            message_id="<first.1@example.net>",
        )
    )
    assert sync(runner).exit_code == 0

    (received,) = smtp.wait_for(1)
    case = db.session.scalars(select(Case)).one()
    mail = received.message()
    assert received.mail_from == "ca@example.org"
    assert received.rcpt_tos == ["nadia@example.net"]
    assert mail["Subject"] == f"[{case.reference}] We received your message"
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["In-Reply-To"] == "<first.1@example.net>"
    assert case.reference in mail.get_body(("plain",)).get_content()
    outbound = db.session.scalars(select(OutboundMail)).one()
    assert (outbound.state, outbound.purpose) == ("sent", "acknowledgement")


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"X-Autorespond": "yes"},
        {"X-Autoreply": "yes"},
        {"Precedence": "bulk"},
        {"List-Id": "<wikimedia-l.lists.example.net>"},
        {"Return-Path": "<>"},
    ],
    ids=lambda headers: next(iter(headers)),
)
def test_automatic_mail_is_flagged_and_never_acknowledged(
    app: Flask,
    runner: FlaskCliRunner,
    imap_account: ImapAccount,
    smtp: SmtpServer,
    headers: dict[str, str],
) -> None:
    imap_account.append(make_mail("Out of office", sender="robot@example.net", headers=headers))
    sync(runner)

    (message,) = inbound()
    assert message.auto_submitted
    assert smtp.messages == []
    assert db.session.scalar(select(func.count()).select_from(OutboundMail)) == 0


def test_a_bounce_of_our_acknowledgement_lands_on_its_case_without_an_answer(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    imap_account.append(make_mail("Report", sender="olga@example.net"))
    sync(runner)
    (ack,) = smtp.wait_for(1)
    case_id = inbound()[0].case_id
    smtp.clear()

    imap_account.append(_dsn(returned=ack.data, recipient="olga@example.net"))
    sync(runner)

    _, bounce = inbound()
    assert (bounce.bounce, bounce.auto_submitted, bounce.case_id) == (True, True, case_id)
    assert case_count() == 1
    assert smtp.messages == []


def test_a_reply_joining_its_case_gets_no_acknowledgement(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    imap_account.append(make_mail("Report", sender="piet@example.net"))
    sync(runner)
    (ack,) = smtp.wait_for(1)
    smtp.clear()

    imap_account.append(
        make_mail(
            "Re: whatever", sender="piet@example.net", in_reply_to=ack.message()["Message-ID"]
        )
    )
    sync(runner)

    assert len({m.case_id for m in inbound()}) == 1
    assert smtp.messages == []


def test_acknowledgements_are_limited_per_address_per_day(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    append_all(
        imap_account, [make_mail(f"Report {n}", sender="quinn@example.net") for n in range(3)]
    )
    sync(runner)

    assert case_count() == 3
    assert len(smtp.wait_for(2)) == 2
    assert db.session.scalar(select(func.count()).select_from(OutboundMail)) == 2


def test_no_acknowledgement_to_a_forged_sender_or_our_own_address(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    forged = make_mail("Close the case", sender="victim@example.net").replace(
        b"From:",
        b"Authentication-Results: mx.example.org; spf=fail; dkim=fail; dmarc=fail\r\nFrom:",
        1,
    )
    append_all(imap_account, [forged, make_mail("Loop?", sender="Trust & Safety <ca@example.org>")])
    sync(runner)

    assert len(inbound()) == 2
    assert smtp.messages == []


def test_an_smtp_outage_leaves_the_acknowledgement_queued(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    smtp.refuse()
    imap_account.append(make_mail("Report", sender="rosa@example.net"))

    result = sync(runner)

    assert result.exit_code == 0, result.output
    outbound = db.session.scalars(select(OutboundMail)).one()
    assert (outbound.state, outbound.attempts) == ("pending", 1)
    assert len(inbound()) == 1


def _dsn(*, returned: bytes, recipient: str) -> bytes:
    """A Postfix-style delivery status notification (RFC 3464) returning ``returned`` whole."""
    boundary = b"dsn-boundary-1"
    return crlf(
        b"Return-Path: <>\n"
        b"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\n"
        b"To: ca@example.org\n"
        b"Subject: Undelivered Mail Returned to Sender\n"
        b"Message-ID: <dsn.1@mx.example.net>\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="'
        + boundary
        + b'"\n'
        b"\n--" + boundary + b"\n"
        b"Content-Type: text/plain\n\nYour message could not be delivered.\n"
        b"\n--" + boundary + b"\n"
        b"Content-Type: message/delivery-status\n\n"
        b"Reporting-MTA: dns; mx.example.net\n\n"
        b"Final-Recipient: rfc822; " + recipient.encode() + b"\nAction: failed\nStatus: 5.1.1\n"
        b"\n--" + boundary + b"\n"
        b"Content-Type: message/rfc822\n\n" + returned + b"\n--" + boundary + b"--\n"
    )


def test_mail_from_a_locked_out_reporter_is_kept_but_quarantined(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    imap_account.append(make_mail("First", sender="zed@example.net", message_id="<z.1@x.net>"))
    sync(runner)
    (first,) = inbound()
    case_id = first.case_id
    smtp.clear()
    reporter = find_or_create_reporter(db.session, "zed@example.net")
    now = utcnow()
    db.session.add(
        Lockout(
            reporter_id=reporter.id,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=7),
            proposed_days=7,
        )
    )
    db.session.commit()

    append_all(
        imap_account,
        [
            make_mail("Re: First", sender="Zed+x@Example.net", in_reply_to="<z.1@x.net>"),
            make_mail("A new complaint", sender="zed@example.net"),
        ],
    )
    result = sync(runner)

    assert result.output.strip() == "ca: 2 new, 0 already stored, 2 flagged (0 cases opened)"
    _, reply, new = inbound()
    assert (reply.quarantined, reply.case_id) == (True, case_id)
    assert (new.quarantined, new.case_id) == (True, None)
    assert case_count() == 1
    assert smtp.messages == []
