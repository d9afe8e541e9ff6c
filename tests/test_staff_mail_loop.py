"""The whole loop against real servers: mail in through Dovecot, answered from the case page,
the reply caught by a real SMTP server, and the requester's answer threaded onto the case,
even when their mail client rewrote the subject."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from portal.extensions import db
from portal.models import Case, Message, StaffUser
from tests.conftest import csrf_token, work_outbox
from tests.factories import Auth
from tests.mailbridge_helpers import make_mail, sync
from tests.servers.fixtures import ImapAccount
from tests.servers.smtp import SmtpServer


@pytest.fixture
def app_config(imap_account: ImapAccount, smtp: SmtpServer) -> dict[str, Any]:
    return {"IMAP_CA_URL": imap_account.url(), "MAIL_SERVER": smtp.host, "MAIL_PORT": smtp.port}


def test_mail_in_reply_out_answer_back_on_the_same_case(
    auth: Auth,
    client: FlaskClient,
    runner: FlaskCliRunner,
    create_staff: Callable[..., StaffUser],
    imap_account: ImapAccount,
    smtp: SmtpServer,
) -> None:
    imap_account.append(
        make_mail(
            "Someone is stalking me across wikis",
            sender="Rana <rana@example.net>",
            message_id="<rana.1@example.net>",
            body="Here are the diffs.",
        )
    )
    assert sync(runner).exit_code == 0
    db.session.rollback()
    case = db.session.scalars(select(Case)).one()
    case_id, reference = case.id, case.reference
    inbound = db.session.scalars(select(Message).where(Message.direction == "inbound")).one()
    ack = smtp.wait_for(1)[0]
    assert ack.message()["Auto-Submitted"] == "auto-replied"
    smtp.clear()

    agent = create_staff("trust_safety", name="Agent")
    auth.login(agent)
    page = client.get(f"/staff/cases/{case_id}/reply?to={inbound.id}")
    response = client.post(
        f"/staff/cases/{case_id}/reply",
        data={
            "csrf_token": csrf_token(page),
            "body": "Thank you, Rana. Could you tell us when this started?",
            "in_reply_to": str(inbound.id),
        },
    )
    assert response.status_code == 303
    work_outbox(client.application)
    reply = smtp.wait_for(1)[0]
    headers = reply.message()
    assert reply.rcpt_tos == ["rana@example.net"]
    assert headers["From"] == "ca@example.org"
    assert headers["In-Reply-To"] == "<rana.1@example.net>"
    assert "<rana.1@example.net>" in headers["References"]
    assert headers["Subject"] == f"Re: [{reference}] Someone is stalking me across wikis"
    our_id = headers["Message-ID"]

    # Rana answers from a client that rewrote the subject and kept only In-Reply-To.
    imap_account.append(
        make_mail(
            "AW: stalking",
            sender="rana@example.net",
            in_reply_to=our_id,
            body="It started in March.",
        )
    )
    assert sync(runner).exit_code == 0
    db.session.rollback()
    assert [c.id for c in db.session.scalars(select(Case))] == [case_id]
    timeline = db.session.scalars(
        select(Message).where(Message.case_id == case_id).order_by(Message.id)
    ).all()
    directions = [m.direction for m in timeline]
    assert directions.count("inbound") == 2
    assert "It started in March." in (timeline[-1].body_text or "")
    html = client.get(f"/staff/cases/{case_id}").get_data(as_text=True)
    assert "It started in March." in html
    assert "Thank you, Rana." in html
