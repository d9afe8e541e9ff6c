"""Appeals by mail (issue 5): ``appeal_from_mail`` for mail the bridge filed from appeals@.

Most tests build the rows as the bridge does (an ``inquiry`` in team appeals, its first
inbound Message) and call the service directly. The last one goes through real Dovecot,
``mailbridge sync --once`` and a real SMTP server.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from portal.addresses import canonical_address
from portal.config import get_settings
from portal.extensions import db
from portal.models import Appeal, AuditEvent, Case, Message, StaffUser
from portal.models.base import utcnow
from portal.models.message import Channel, Direction
from portal.policy.mail import MailPurpose
from portal.policy.routing import Team
from portal.services.appeal_checks import Confirmed
from portal.services.appeals import Filed, FilingResult, appeal_from_mail, confirm_appeal
from portal.services.cases import open_mail_case
from tests.appeals_helpers import (
    DECIDED_AT,
    REQUESTER,
    SUBJECT,
    decided_case,
    link_in,
    outbox,
    text_of,
    token_of,
)
from tests.conftest import csrf_token, work_outbox

SOON = DECIDED_AT + timedelta(days=7)


@pytest.fixture
def decider(create_staff: Callable[..., StaffUser]) -> StaffUser:
    return create_staff("trust_safety")


@pytest.fixture
def case(create_case: Callable[..., Case], decider: StaffUser) -> Case:
    return decided_case(create_case, decider)


def bridge_files(
    subject: str,
    *,
    sender: str = SUBJECT,
    body: str = "I appeal: the evidence was misread.",
    now: datetime = SOON,
    **flags: Any,
) -> Message:
    """What the bridge stores for new mail in the appeals mailbox: an inquiry and its mail,
    its sender verified unless ``sender_verified`` says otherwise."""
    flags.setdefault("sender_verified", True)
    inquiry = open_mail_case(
        db.session,
        team=Team.APPEALS,
        mailbox="appeals",
        sender=sender,
        sender_name=None,
        subject=subject,
        now=now,
    )
    message = Message(
        case_id=inquiry.id,
        direction=Direction.INBOUND,
        channel=Channel.MAIL,
        message_id=f"<{now.timestamp()}.{sender}@mail.example>",
        references="<earlier@mail.example>",
        sender=sender,
        recipients=["appeals@example.org"],
        subject=subject,
        body_text=body,
        sent_at=now,
        created_at=now,
        mailbox="appeals",
        **flags,
    )
    db.session.add(message)
    db.session.flush()
    return message


def run(app: Flask, message: Message, now: datetime = SOON) -> FilingResult:
    result = appeal_from_mail(
        db.session, get_settings(), str(app.secret_key), message=message, now=now
    )
    db.session.commit()
    return result


def test_a_party_naming_a_reference_is_sent_a_threaded_confirmation_link(
    app: Flask, case: Case
) -> None:
    message = bridge_files(f"Appeal of {case.reference}")
    inquiry_id = message.case_id
    result = run(app, message)
    assert result.result is Filed.CONFIRMATION_SENT
    (mail,) = outbox(MailPurpose.APPEAL_CONFIRMATION)
    assert mail.recipients == [SUBJECT]
    assert mail.case_id == inquiry_id
    assert mail.envelope_from == "appeals@example.org"
    raw = mail.raw.decode()
    inquiry = db.session.get_one(Case, inquiry_id)
    # The inquiry's reference first, so a reply threads to it, not to a new filing.
    assert f"Subject: [{inquiry.reference}] Please confirm your appeal of {case.reference}" in raw
    assert f"In-Reply-To: {message.message_id}" in raw
    assert "Auto-Submitted: auto-replied" in raw
    assert "We received your e-mail appealing" in text_of(mail.raw)
    # Not in any open queue until the link is followed.
    assert (inquiry.kind, inquiry.status, inquiry.linked_case_id) == ("inquiry", "closed", case.id)

    # Following the link turns the inquiry, with the mail on it, into the appeal.
    confirmed = confirm_appeal(
        db.session,
        get_settings(),
        str(app.secret_key),
        token_of(mail),
        now=SOON + timedelta(hours=1),
    )
    db.session.commit()
    assert confirmed.status is Confirmed.CONFIRMED
    appeal = db.session.scalars(select(Appeal)).one()
    inquiry = db.session.get_one(Case, inquiry_id)
    assert appeal.appeal_case_id == inquiry_id
    assert (inquiry.kind, inquiry.team, inquiry.status) == ("appeal", "appeals", "new")
    assert inquiry.appeal_of_id == case.id
    assert inquiry.due_at is not None
    assert (appeal.role, appeal.channel, appeal.source_message_id) == (
        "subject",
        "mail",
        message.id,
    )


def test_the_requester_is_recognised_by_their_address(app: Flask, case: Case) -> None:
    message = bridge_files(f"Re: {case.reference}", sender="Requester+x@Example.org")
    assert run(app, message).result is Filed.CONFIRMATION_SENT
    (mail,) = outbox(MailPurpose.APPEAL_CONFIRMATION)
    # Reporter.email is the spelling last written (the bridge keeps it current): the same
    # mailbox as the one on record, by the canonical form the party was matched with.
    assert [canonical_address(to) for to in mail.recipients] == [REQUESTER]
    assert db.session.scalars(select(Appeal)).one().role == "requester"


def test_the_reference_may_be_in_the_body(app: Flask, case: Case) -> None:
    message = bridge_files("Appeal", body=f"Please review case {case.reference}.")
    assert run(app, message).result is Filed.CONFIRMATION_SENT


def test_a_stranger_is_answered_by_nothing_but_the_bridge(app: Flask, case: Case) -> None:
    message = bridge_files(f"Appeal of {case.reference}", sender="stranger@example.com")
    assert run(app, message).result is Filed.NO_MATCH
    unknown = bridge_files("Appeal of OA-2026-999999", now=SOON + timedelta(minutes=1))
    assert run(app, unknown).result is Filed.NO_MATCH
    assert outbox() == []
    assert db.session.scalars(select(Appeal)).all() == []


def test_mail_without_a_reference_stays_an_inquiry(app: Flask, case: Case) -> None:
    message = bridge_files("I want to appeal my ban")
    assert run(app, message).result is Filed.NO_REFERENCE
    inquiry = db.session.get_one(Case, message.case_id)
    assert (inquiry.kind, inquiry.status) == ("inquiry", "new")
    assert outbox() == []


def test_a_refusal_tells_the_party_why_and_closes_the_inquiry(
    app: Flask, create_case: Callable[..., Case], decider: StaffUser
) -> None:
    dmca = decided_case(create_case, decider, action="dmca")
    message = bridge_files(f"Appeal {dmca.reference}", sender=REQUESTER)
    assert run(app, message).result is Filed.REFUSED
    (mail,) = outbox(MailPurpose.APPEAL_REFUSAL)
    assert mail.recipients == [REQUESTER]
    assert "counter-notice" in text_of(mail.raw)
    assert "legal@example.org" in text_of(mail.raw)
    assert db.session.get_one(Case, message.case_id).status == "closed"


def test_too_late_by_one_day(app: Flask, case: Case) -> None:
    on_time = bridge_files(
        f"Appeal {case.reference}", now=DECIDED_AT.replace(year=2027, month=2, day=28)
    )
    assert run(app, on_time).result is Filed.CONFIRMATION_SENT
    late = bridge_files(
        f"Appeal {case.reference}",
        sender=REQUESTER,
        now=DECIDED_AT.replace(year=2027, month=3, day=1, hour=0),
    )
    assert run(app, late).result is Filed.REFUSED
    assert "28 February 2027" in " ".join(
        text_of(outbox(MailPurpose.APPEAL_REFUSAL)[0].raw).split()
    )


@pytest.mark.parametrize(
    "flags",
    [
        {"auto_submitted": True},
        {"bounce": True},
        {"auth_results": {"dmarc": "fail"}},
    ],
)
def test_automatic_or_forged_mail_is_never_answered(
    app: Flask, case: Case, flags: dict[str, Any]
) -> None:
    message = bridge_files(f"Appeal of {case.reference}", **flags)
    assert run(app, message).result is Filed.IGNORED
    assert outbox() == []


@pytest.mark.parametrize("verified", [False, None], ids=["not-verified", "not-judged"])
def test_a_party_address_without_proof_gets_nothing_and_waits_for_staff(
    app: Flask, case: Case, verified: bool | None
) -> None:
    """Issue 10: anyone can write a party's address in From; a link would then reach the party
    for an appeal they never wrote (and a refusal, for one they never made)."""
    message = bridge_files(f"Appeal of {case.reference}", sender_verified=verified)
    inquiry_id, case_id = message.case_id, case.id

    assert run(app, message).result is Filed.UNVERIFIED

    assert outbox() == []
    assert db.session.scalars(select(Appeal)).all() == []
    inquiry = db.session.get_one(Case, inquiry_id)
    assert (inquiry.status, inquiry.linked_case_id) == ("new", case_id)
    assert "sender not verified" in (db.session.get_one(Message, message.id).flag_reason or "")
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.case_id == case_id))
    assert "appeal.unverified" in [e.action for e in events]


def test_handled_once_and_never_for_a_reply_in_a_conversation(app: Flask, case: Case) -> None:
    message = bridge_files(f"Appeal of {case.reference}")
    assert run(app, message).result is Filed.CONFIRMATION_SENT
    assert run(app, message).result is Filed.NOT_NEW
    reply = Message(
        case_id=message.case_id,
        direction=Direction.INBOUND,
        channel=Channel.MAIL,
        sender=SUBJECT,
        subject=f"Re: Appeal of {case.reference}",
        body_text="Here is more.",
        created_at=SOON,
    )
    db.session.add(reply)
    db.session.flush()
    assert run(app, reply).result is Filed.NOT_NEW
    assert len(outbox(MailPurpose.APPEAL_CONFIRMATION)) == 1


# -- through the real servers -------------------------------------------------------------------


@pytest.fixture
def real_servers(imap_account: Any, smtp: Any) -> tuple[Any, Any]:
    return imap_account, smtp


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The real mailboxes and SMTP server only for the test that asks for ``real_servers``:
    the others must not start Dovecot."""
    if "real_servers" not in request.fixturenames:
        return {}
    imap_account = request.getfixturevalue("imap_account")
    smtp = request.getfixturevalue("smtp")
    return {
        "IMAP_CA_URL": None,
        "IMAP_APPEALS_URL": imap_account.url(),
        "MAIL_SERVER": smtp.host,
        "MAIL_PORT": smtp.port,
        "APPEAL_PAGE_RATE_LIMIT": "1000 per hour",
    }


def test_an_appeal_by_mail_through_dovecot_the_bridge_and_smtp(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    real_servers: tuple[Any, Any],
    create_case: Callable[..., Case],
    decider: StaffUser,
) -> None:
    from mailbridge.cli import cli as mailbridge_cli
    from tests.mailbridge_helpers import make_mail

    imap_account, smtp = real_servers
    case = decided_case(create_case, decider, decided_at=utcnow() - timedelta(days=30))
    # Plain values: the bridge expunges the session's objects after its batch.
    reference, case_id = case.reference, case.id
    imap_account.append(
        # Our server's DMARC pass for the From's domain: the party wrote it (issue 10).
        b"Authentication-Results: mx.example.org; dmarc=pass header.from=example.net\r\n"
        + make_mail(
            f"Appeal of {reference}",
            sender=f"Sub Ject <{SUBJECT}>",
            to="appeals@example.org",
            body="The committee should look again: the diffs are not mine.",
        )
    )
    synced = runner.invoke(mailbridge_cli, ["sync", "--once"])
    assert synced.exit_code == 0, synced.output
    assert synced.output.startswith("appeals: 1 new")

    db.session.expire_all()
    message = db.session.scalars(
        select(Message).where(Message.mailbox == "appeals", Message.direction == "inbound")
    ).one()
    # The bridge filed the appeal itself, in the same transaction as the message.
    assert db.session.scalar(select(Appeal).where(Appeal.source_message_id == message.id))

    # The confirmation link is the answer: no acknowledgement on top of it.
    received = smtp.wait_for(1)
    confirmations = [m for m in received if "Please confirm your appeal" in m.message()["Subject"]]
    assert len(confirmations) == 1
    mail = confirmations[0]
    assert mail.rcpt_tos == [SUBJECT]
    assert mail.message()["From"] == "appeals@example.org"
    assert mail.message()["In-Reply-To"] == message.message_id

    path = "/appeals/confirm/" + link_in(mail.data).rsplit("/", 1)[1]
    page = client.get(path)
    done = client.post(path, data={"csrf_token": csrf_token(page)}, follow_redirects=True)
    assert done.status_code == 200
    assert "your appeal has been sent to its reviewers" in done.get_data(as_text=True)
    work_outbox(client.application)
    filed = smtp.wait_for(2)[-1]
    assert "is with its reviewers" in filed.message()["Subject"]
    assert filed.rcpt_tos == [SUBJECT]
    db.session.expire_all()
    appeal_case = db.session.get_one(Case, message.case_id)
    assert (appeal_case.kind, appeal_case.appeal_of_id) == ("appeal", case_id)
