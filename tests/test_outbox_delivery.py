"""The delivery worker's promises: mail is never sent inside a web request, one mail's trouble
never holds back the others, internationalised addresses travel with SMTPUTF8 (or fail
clearly), and delivery is at least once with a stable Message-ID.

Issue: "Keep every promise under concurrency, hostile mail and non-ASCII addresses", items 2
and 3, each against a real SMTP server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from portal.config import get_settings
from portal.extensions import db
from portal.models import AuditEvent, Case, OutboundMail, StaffUser
from portal.services import delivery, outbound
from tests.conftest import make_app, post_form, work_outbox
from tests.factories import Auth
from tests.public_data import valid_request
from tests.servers.smtp import SilentServer, SmtpServer


def queue(case: Case, to: str, text: str = "Hello") -> OutboundMail:
    settings = get_settings()
    mail = outbound.queue_mail(
        db.session,
        settings,
        "test-secret-key",
        case=case,
        to=to,
        subject=f"[{case.reference}] About your request",
        text=text,
        purpose="reply",
    )
    db.session.commit()
    return mail


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.stop()


def test_a_web_request_never_waits_for_the_mail_server(
    tmp_path: Path, database_url: str, silent: SilentServer
) -> None:
    """Seen: an SMTP server that accepts the connection and never answers kept a public form
    request hanging for 149 s. Now the request only queues; the worker gives up on the server
    after PORTAL_MAIL_TIMEOUT and leaves the mail queued."""
    app = make_app(tmp_path, MAIL_SERVER=silent.host, MAIL_PORT=silent.port, MAIL_TIMEOUT=1)
    with app.app_context():
        client = app.test_client()
        response = post_form(client, "/requests/new", valid_request())
        assert response.status_code == 303
        assert silent.connections == 0  # the request never even connected

        started = time.monotonic()
        round_ = work_outbox(app)
        assert time.monotonic() - started < 20
        assert (round_.mail.sent, round_.mail.pending) == (0, 1)
        row = db.session.scalars(select(OutboundMail)).one()
        assert row.state == "pending"
        assert "timed out" in (row.last_error or "")
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app_config(smtp: SmtpServer) -> dict[str, Any]:
    return {"MAIL_SERVER": smtp.host, "MAIL_PORT": smtp.port}


@pytest.fixture
def ascii_only(app: Flask, smtp_ascii: SmtpServer) -> Iterator[SmtpServer]:
    """The app's mail goes to a server without SMTPUTF8 for this test."""
    settings = app.extensions["portal.settings"]
    app.extensions["portal.settings"] = type(settings)(
        **{**settings.__dict__, "mail_port": smtp_ascii.port}
    )
    yield smtp_ascii
    app.extensions["portal.settings"] = settings


@pytest.mark.parametrize(
    ("address", "envelope", "smtputf8"),
    [
        ("josé@example.com", "josé@example.com", True),
        ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v", True),
        ("jose@exämple.com", "jose@xn--exmple-cua.com", False),
        ("x@xn--bcher-kva.example", "x@xn--bcher-kva.example", False),
    ],
)
def test_internationalised_addresses_are_delivered(
    app: Flask,
    create_case: Callable[..., Case],
    smtp: SmtpServer,
    address: str,
    envelope: str,
    smtputf8: bool,
) -> None:
    """Only an address whose local part is not ASCII needs SMTPUTF8; an IDN domain travels as
    its ASCII (IDNA) form, which every server takes."""
    case = create_case()
    queue(case, address)
    assert work_outbox(app).mail.sent == 1
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == [envelope]
    assert mail.smtputf8 is smtputf8
    assert mail.message()["Subject"] == f"[{case.reference}] About your request"


def test_one_undeliverable_mail_never_holds_back_the_others(
    app: Flask,
    runner: FlaskCliRunner,
    create_case: Callable[..., Case],
    create_staff: Callable[..., StaffUser],
    ascii_only: SmtpServer,
) -> None:
    """Seen: one queued mail to josé@example.com crashed `outbox flush` and held back every
    mail queued after it. Now it fails, alone, with a reason staff read on its case."""
    case = create_case()
    first = queue(case, "josé@example.com", text="To José")
    queue(case, "maria@example.org", text="To Maria")
    result = runner.invoke(args=["outbox", "flush"])
    assert result.output == "outbox: 1 sent, 1 failed, 0 pending\n"
    assert result.exit_code == 1
    (mail,) = ascii_only.wait_for(1)
    assert mail.rcpt_tos == ["maria@example.org"]

    db.session.expire_all()
    failed = db.session.get_one(OutboundMail, first.id)
    assert failed.state == "failed"
    assert "does not accept internationalised addresses (SMTPUTF8)" in (failed.last_error or "")
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "mail.failed")).one()
    assert (event.case_id, event.details["outbound_id"]) == (case.id, first.id)
    assert "josé" not in str(event.details)  # the trail names rows, never addresses

    client = app.test_client()
    Auth(client).login(create_staff("trust_safety"))
    page = client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert "Not delivered" in page
    assert "does not accept internationalised addresses" in page
    # Failed for good: not tried again.
    assert runner.invoke(args=["outbox", "flush"]).output == "outbox: 0 sent, 0 failed, 0 pending\n"


def test_a_permanent_refusal_fails_at_once_a_temporary_one_after_its_attempts(
    app: Flask, create_case: Callable[..., Case], smtp: SmtpServer
) -> None:
    case = create_case()
    refused = queue(case, "gone@example.org")
    smtp.refuse(550, "5.1.1 no such mailbox")
    work_outbox(app)
    db.session.expire_all()
    row = db.session.get_one(OutboundMail, refused.id)
    assert (row.state, row.attempts) == ("failed", 0)
    assert "550" in (row.last_error or "")

    later = queue(case, "later@example.org")
    smtp.refuse(451, "4.3.0 try again later")
    settings = get_settings()
    for _ in range(settings.mail_max_attempts):
        db.session.get_one(OutboundMail, later.id).next_attempt_at = later.created_at
        db.session.commit()
        work_outbox(app)
        db.session.expire_all()
    row = db.session.get_one(OutboundMail, later.id)
    assert (row.state, row.attempts) == ("failed", settings.mail_max_attempts)
    assert (row.last_error or "").startswith(f"gave up after {settings.mail_max_attempts} attempts")


def test_a_connection_cut_after_data_sends_again_with_the_same_message_id(
    app: Flask, create_case: Callable[..., Case], smtp: SmtpServer
) -> None:
    """Seen: a cut after DATA sent one mail twice. SMTP cannot say whether the server kept a
    mail it did not acknowledge, so delivery is at least once, and the copy is recognisable:
    the same Message-ID, the same bytes."""
    case = create_case()
    queued = queue(case, "reporter@example.org")
    smtp.cut_after_data(1)
    round_ = work_outbox(app)
    assert (round_.mail.sent, round_.mail.pending) == (0, 1)
    db.session.expire_all()
    row = db.session.get_one(OutboundMail, queued.id)
    row.next_attempt_at = row.created_at
    db.session.commit()
    assert work_outbox(app).mail.sent == 1
    first, second = smtp.wait_for(2)
    assert first.data == second.data
    assert first.message()["Message-ID"] == queued.message_id
    assert work_outbox(app).mail.sent == 0  # sent is sent: never again


def test_a_claim_left_by_a_dead_worker_counts_as_pending(
    runner: FlaskCliRunner, create_case: Callable[..., Case], smtp: SmtpServer
) -> None:
    """A worker that died while sending leaves its row `sending`; once its claim has run out
    the mail is owed again: flush reports it and sends it."""
    case = create_case()
    queued = queue(case, "reporter@example.org")
    row = db.session.get_one(OutboundMail, queued.id)
    row.state = "sending"
    row.next_attempt_at = row.created_at  # the claim ran out
    db.session.commit()
    assert outbound.count_pending(db.session) == 1
    smtp.stop()
    try:
        down = runner.invoke(args=["outbox", "flush"])
        assert (down.exit_code, down.output) == (1, "outbox: 0 sent, 0 failed, 1 pending\n")
    finally:
        smtp.start()


def test_outbox_run_delivers_until_stopped(
    app: Flask, create_case: Callable[..., Case], smtp: SmtpServer
) -> None:
    """The long-running worker: mail queued while it runs goes out within a round."""
    stop = threading.Event()

    def work() -> None:
        with app.app_context():
            settings = get_settings()
            fast = type(settings)(**{**settings.__dict__, "outbox_poll_seconds": 0.1})
            delivery.run(db.session, fast, "test-secret-key", stop)
            db.session.remove()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        queue(create_case(), "reporter@example.org")
        (mail,) = smtp.wait_for(1, timeout=10)
        assert mail.rcpt_tos == ["reporter@example.org"]
    finally:
        stop.set()
        worker.join(10)
    assert not worker.is_alive()
