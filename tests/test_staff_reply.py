"""Replying from the case page: threaded headers, the outbox through an SMTP outage, canned
responses, the colleague-is-replying warning, and no header injection through any field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from portal.extensions import db
from portal.models import CannedResponse, Case, Message, OutboundMail, StaffUser
from portal.models.message import Channel, Direction
from tests.conftest import csrf_token, work_outbox
from tests.factories import Auth
from tests.servers.smtp import SmtpServer


@pytest.fixture
def app_config(smtp: SmtpServer) -> dict[str, Any]:
    return {"MAIL_SERVER": smtp.host, "MAIL_PORT": smtp.port}


@pytest.fixture
def agent(create_staff: Callable[..., StaffUser]) -> StaffUser:
    return create_staff("trust_safety", "admin", name="Agent Smith")


def inbound_mail(
    case: Case,
    subject: str,
    sender: str = "reporter@example.org",
    message_id: str = "<m1@mail.example>",
) -> Message:
    message = Message(
        case_id=case.id,
        direction=Direction.INBOUND,
        channel=Channel.MAIL,
        message_id=message_id,
        references="<m0@mail.example>",
        sender=sender,
        subject=subject,
        body_text="More evidence attached.",
    )
    db.session.add(message)
    db.session.commit()
    return message


def send_reply(client: FlaskClient, case: Case, body: str, to: Message | None = None) -> Any:
    url = f"/staff/cases/{case.id}/reply" + (f"?to={to.id}" if to else "")
    page = client.get(url)
    data = {"csrf_token": csrf_token(page), "body": body, "in_reply_to": str(to.id) if to else ""}
    return client.post(f"/staff/cases/{case.id}/reply", data=data)


def test_reply_is_threaded_and_on_the_timeline(
    auth: Auth,
    client: FlaskClient,
    agent: StaffUser,
    create_case: Callable[..., Case],
    smtp: SmtpServer,
) -> None:
    case = create_case(requester_email="reporter@example.org")
    answered = inbound_mail(case, f"Re: [{case.reference}] Re: more evidence")
    auth.login(agent)
    response = send_reply(client, case, "Thank you, we are looking into it.", to=answered)
    assert response.status_code == 303

    work_outbox(client.application)
    mail = smtp.wait_for(1)[0]
    message = mail.message()
    assert mail.rcpt_tos == ["reporter@example.org"]
    assert message["From"] == "ca@example.org"
    assert message["Subject"] == f"Re: [{case.reference}] more evidence"
    assert message["In-Reply-To"] == "<m1@mail.example>"
    assert message["References"] == "<m0@mail.example> <m1@mail.example>"
    assert message["Message-ID"].startswith(f"<oa.{case.id}.")
    assert message["Auto-Submitted"] is None
    assert "Thank you" in message.get_content()

    html = client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert "Thank you, we are looking into it." in html
    assert "Delivered to the mail server" in html


def test_outbox_survives_an_smtp_outage_and_never_sends_twice(
    auth: Auth,
    client: FlaskClient,
    runner: FlaskCliRunner,
    agent: StaffUser,
    create_case: Callable[..., Case],
    smtp: SmtpServer,
) -> None:
    case = create_case()
    auth.login(agent)
    smtp.stop()
    try:
        assert send_reply(client, case, "Sent while the server is down.").status_code == 303
        work_outbox(client.application)  # the delivery worker tries while the server is down
        page = client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
        assert "Sent while the server is down." in page
        assert "Pending: not yet accepted" in page
    finally:
        smtp.start()
    row = db.session.scalars(select(OutboundMail).where(OutboundMail.purpose == "reply")).one()
    assert (row.state, row.attempts) == ("pending", 1)

    # Not due yet: the retry waits for its time, and the mail is still owed.
    waiting = runner.invoke(args=["outbox", "flush"])
    assert (waiting.exit_code, waiting.output) == (1, "outbox: 0 sent, 0 failed, 1 pending\n")
    row.next_attempt_at = row.created_at
    db.session.commit()
    result = runner.invoke(args=["outbox", "flush"])
    assert result.exit_code == 0, result.output
    assert "1 sent" in result.output
    assert len(smtp.wait_for(1)) == 1
    again = runner.invoke(args=["outbox", "flush"])
    assert "0 sent" in again.output
    assert len(smtp.messages) == 1


def test_refused_mail_stays_pending_with_the_reason(
    auth: Auth,
    client: FlaskClient,
    runner: FlaskCliRunner,
    agent: StaffUser,
    create_case: Callable[..., Case],
    smtp: SmtpServer,
) -> None:
    case = create_case()
    smtp.refuse(451)
    auth.login(agent)
    send_reply(client, case, "Temporarily refused.")
    work_outbox(client.application)
    row = db.session.scalars(select(OutboundMail).where(OutboundMail.purpose == "reply")).one()
    assert row.state == "pending"
    assert "451" in (row.last_error or "")
    # Nothing due yet, but still owed: flush says so, and exits 1 for a monitoring check.
    assert runner.invoke(args=["outbox", "flush"]).exit_code == 1


@pytest.mark.parametrize(
    "subject",
    [
        "Hello\r\nBcc: victim@example.org",
        "Hello\nX-Injected: 1",
        "=?utf-8?q?Hello=0D=0ABcc=3A_victim=40example.org?=",
    ],
)
def test_no_header_injection_through_the_subject_answered(
    auth: Auth,
    client: FlaskClient,
    agent: StaffUser,
    create_case: Callable[..., Case],
    smtp: SmtpServer,
    subject: str,
) -> None:
    case = create_case()
    answered = inbound_mail(case, subject)
    auth.login(agent)
    assert (
        send_reply(client, case, "Body\r\nBcc: victim@example.org", to=answered).status_code == 303
    )
    work_outbox(client.application)
    mail = smtp.wait_for(1)[0]
    assert mail.rcpt_tos == ["reporter@example.org"]
    message = mail.message()
    assert message["Bcc"] is None
    assert message["X-Injected"] is None
    assert "\n" not in message["Subject"]


def test_no_header_injection_through_the_address(
    auth: Auth,
    client: FlaskClient,
    agent: StaffUser,
    create_case: Callable[..., Case],
    smtp: SmtpServer,
) -> None:
    case = create_case()
    answered = inbound_mail(case, "Hi", sender="a@example.org\r\nBcc: victim@example.org")
    auth.login(agent)
    response = send_reply(client, case, "Hello", to=answered)
    assert response.status_code == 400
    assert "line break" in response.get_data(as_text=True)
    assert smtp.messages == []
    assert (
        db.session.scalars(select(OutboundMail).where(OutboundMail.purpose == "reply")).all() == []
    )


def test_canned_response_fills_placeholders_only(
    auth: Auth, client: FlaskClient, agent: StaffUser, create_case: Callable[..., Case]
) -> None:
    case = create_case(requester_email="x@example.org")
    auth.login(agent)
    page = client.get("/staff/admin/canned")
    response = client.post(
        "/staff/admin/canned/new",
        data={
            "csrf_token": csrf_token(page),
            "title": "Need more evidence",
            "body": "Dear {requester_name}, about {reference}: please send diffs. {secret_key} {0}",
            "team": "",
        },
    )
    assert response.status_code == 303
    canned = db.session.scalars(select(CannedResponse)).one()
    html = client.get(f"/staff/cases/{case.id}/reply?canned={canned.id}").get_data(as_text=True)
    assert (
        f"Dear {case.requester_name}, about {case.reference}: please send diffs. {{secret_key}} {{0}}"
        in html
    )


def test_colleague_is_warned_that_a_reply_is_being_written(
    app: Any,
    agent: StaffUser,
    create_staff: Callable[..., StaffUser],
    create_case: Callable[..., Case],
) -> None:
    case = create_case()
    first = app.test_client()
    Auth(first).login(agent)
    first.get(f"/staff/cases/{case.id}/reply")
    colleague = app.test_client()
    Auth(colleague).login(create_staff("trust_safety", name="Colleague"))
    html = colleague.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert "Agent Smith opened a reply on this case in the last minutes" in html
    own = first.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert "opened a reply on this case" not in own


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Plain subject", "Plain subject"),
        ("Hello\r\nBcc: x@example.org", "Hello Bcc: x@example.org"),
        ("=?utf-8?q?Hello=0D=0ABcc=3A_x=40example.org?=", "Hello Bcc: x@example.org"),
        # An encoded word that decodes to another one: what is left is inert text.
        ("=?utf-8?q?=3D=3Futf-8=3Fq=3FA=0D=0AB=3F=3D?=", "=?utf-8?q?A B?="),
        ("=?utf-8?q?=3D=3Futf-8=3Fq=3FA=3D0D=3D0AB=3F=3D?=", "A B"),
        ("=?utf-8?b?2YXYsdit2KjYpw==?=", "مرحبا"),
    ],
)
def test_header_text_leaves_no_line_break_to_decode(app: Any, raw: str, expected: str) -> None:
    from email import message_from_bytes, policy

    from flask_mail import Message as MailMessage

    from portal.services.outbound import header_text

    assert header_text(raw) == expected
    with app.test_request_context():
        composed = MailMessage(
            subject=header_text(raw),
            recipients=["a@example.org"],
            body="x",
            sender="ca@example.org",
        )
        parsed = message_from_bytes(composed.as_bytes(), policy=policy.default)
    assert parsed["Bcc"] is None
    assert "\n" not in str(parsed["Subject"])


def test_message_id_list_keeps_only_well_formed_ids() -> None:
    from portal.services.outbound import message_id_list

    assert message_id_list(["<a@b> junk <c@d>", "<e@f>\r\nBcc: z", "<g=?@h>", "no id"]) == [
        "<a@b>",
        "<c@d>",
        "<e@f>",
    ]
