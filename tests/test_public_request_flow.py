"""A valid request end to end: case, routing, clock, audit, timeline, and the acknowledgement
received by a real SMTP server (aiosmtpd) with its headers."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Case, Message, OutboundMail
from portal.services.audit import broken_links
from tests.conftest import post_form, work_outbox
from tests.public_data import valid_request
from tests.servers.smtp import SmtpServer

URL = "/requests/new"


@pytest.fixture
def app_config(smtp: SmtpServer) -> dict[str, Any]:
    return {"MAIL_SERVER": smtp.host, "MAIL_PORT": smtp.port, "ACKS_PER_ADDRESS_PER_DAY": 2}


def test_request_opens_a_routed_clocked_audited_case(client: FlaskClient, smtp: SmtpServer) -> None:
    response = post_form(client, URL, valid_request(action="dmca", prior_attempt_urls=""))
    assert response.status_code == 303

    case = db.session.scalars(select(Case)).one()
    assert re.fullmatch(r"OA-\d{4}-\d{6}", case.reference or "")
    assert case.reference == f"OA-{case.created_at.year}-{case.id:06d}"
    assert (case.kind, case.action, case.team, case.status, case.priority) == (
        "dmca_notice",
        "dmca",
        "legal",
        "new",
        "normal",
    )
    assert case.due_at is not None
    assert timedelta(days=9) <= case.due_at - case.created_at <= timedelta(days=15)

    first, ack_row = db.session.scalars(select(Message).order_by(Message.id)).all()
    assert (first.direction, first.channel) == ("inbound", "web")
    assert "User:Example has harassed" in (first.body_text or "")
    assert (ack_row.direction, ack_row.channel, ack_row.auto_submitted) == (
        "outbound",
        "mail",
        True,
    )

    event = db.session.scalars(select(AuditEvent)).one()
    assert (event.action, event.actor, event.case_id) == ("case.opened", "public", case.id)
    assert "reporter@example.org" not in str(event.details)
    assert list(broken_links(db.session)) == []


def test_acknowledgement_arrives_from_the_team_address(
    client: FlaskClient, smtp: SmtpServer
) -> None:
    post_form(
        client,
        URL,
        valid_request(action="dmca", summary="My photo was copied.", prior_attempt_urls=""),
    )
    post_form(client, URL, valid_request(action="global_ban", requester_email="other@example.org"))
    work_outbox(client.application)
    by_sender = {mail.mail_from: mail for mail in smtp.wait_for(2)}
    legal, trust_safety = by_sender["legal@example.org"], by_sender["ca@example.org"]
    case_legal, case_ts = db.session.scalars(select(Case).order_by(Case.id)).all()

    mail = legal.message()
    assert legal.mail_from == "legal@example.org"
    assert legal.rcpt_tos == ["reporter@example.org"]
    assert mail["From"] == "legal@example.org"
    assert mail["Subject"] == f"[{case_legal.reference}] We received your request"
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["Message-ID"].startswith(f"<oa.{case_legal.id}.")
    body = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert case_legal.reference in body
    assert "My photo was copied." in body
    html = mail.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert case_legal.reference in html

    assert trust_safety.mail_from == "ca@example.org"
    assert case_ts.reference in trust_safety.message()["Subject"]

    sent = db.session.scalars(select(OutboundMail)).all()
    assert {row.state for row in sent} == {"sent"}
    assert {row.message_id for row in sent} == {
        legal.message()["Message-ID"],
        trust_safety.message()["Message-ID"],
    }


def test_acknowledgement_quotes_hostile_input_escaped_in_html(
    client: FlaskClient, smtp: SmtpServer
) -> None:
    post_form(client, URL, valid_request(summary="<script>alert('x')</script> & more"))
    work_outbox(client.application)
    mail = smtp.wait_for(1)[0].message()
    html = mail.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_acknowledgements_are_limited_per_person_per_day(
    client: FlaskClient, smtp: SmtpServer
) -> None:
    for _ in range(3):
        response = post_form(client, URL, valid_request(requester_email="Burst+x@Example.org"))
        assert response.status_code == 303
    page = client.get("/requests/submitted").get_data(as_text=True)
    assert "did not send another one" in page
    work_outbox(client.application)
    assert len(smtp.wait_for(2)) == 2
    assert len(db.session.scalars(select(Case)).all()) == 3


def test_smtp_outage_keeps_the_acknowledgement_queued(
    client: FlaskClient, smtp: SmtpServer
) -> None:
    smtp.refuse(451)
    response = post_form(client, URL, valid_request())
    assert response.status_code == 303, "the person's request must succeed even when mail is down"
    work_outbox(client.application)
    row = db.session.scalars(select(OutboundMail)).one()
    assert row.state == "pending"
    assert row.attempts == 1
    assert row.last_error
    assert "451" in row.last_error
    assert smtp.messages == []
