"""Abuse of the reporting channels: warning before lockout, the rule shown, web refusal for
every address variant, expiry and lifting with a fixed clock, quarantine release."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from portal.config import get_settings
from portal.extensions import db
from portal.models import Attachment, AuditEvent, Case, Lockout, Message, Reporter, StaffUser
from portal.models.base import utcnow
from portal.services import abuse, quarantine
from portal.services.abuse import AbuseError
from portal.storage import BlobStore
from tests.conftest import csrf_token, post_form, work_outbox
from tests.factories import Auth
from tests.public_data import valid_request
from tests.servers.smtp import SmtpServer

ADDRESS = "jane.doe@gmail.com"
VARIANTS = [
    "jane.doe@gmail.com",
    "Jane.Doe@Gmail.com",
    "janedoe+x@gmail.com",
    "j.a.n.e.doe@googlemail.com",
]


@pytest.fixture
def app_config(smtp: SmtpServer) -> dict[str, Any]:
    return {"MAIL_SERVER": smtp.host, "MAIL_PORT": smtp.port}


@pytest.fixture
def agent(create_staff: Callable[..., StaffUser]) -> StaffUser:
    return create_staff("trust_safety")


def mark(
    agent: StaffUser, case: Case, seriousness: str = "serious", intent: str = "unclear"
) -> abuse.NextStep:
    _, step = abuse.mark_abuse(
        db.session,
        agent,
        case=case,
        category="threat_or_harassment_of_staff",
        seriousness=seriousness,
        intent=intent,
        note="Threatening language towards the agent.",
    )
    db.session.commit()
    return step


def lock_out(agent: StaffUser, create_case: Callable[..., Case], smtp: SmtpServer) -> Lockout:
    first = create_case(requester_email=ADDRESS)
    assert mark(agent, first).kind == "warning"
    reporter = db.session.get_one(Reporter, first.requester_id)
    assert abuse.latest_warning(db.session, reporter) is None
    the_mark = db.session.scalars(select(abuse.AbuseMark)).one()
    abuse.send_warning(
        db.session,
        _settings(),
        "test-secret-key",
        agent,
        reporter=reporter,
        mark=the_mark,
        text="Please stop.",
    )
    db.session.commit()
    second = create_case(requester_email=ADDRESS)
    step = mark(agent, second, seriousness="severe", intent="bad_faith")
    assert step.kind == "lockout"
    lockout = abuse.confirm_lockout(db.session, agent, reporter=reporter)
    db.session.commit()
    return lockout


def _settings():  # type: ignore[no-untyped-def]
    from portal.config import get_settings

    return get_settings()


def test_no_lockout_without_a_warning(agent: StaffUser, create_case: Callable[..., Case]) -> None:
    case = create_case(requester_email=ADDRESS)
    assert mark(agent, case).kind == "warning"
    reporter = db.session.get_one(Reporter, case.requester_id)
    with pytest.raises(AbuseError, match="after a warning"):
        abuse.confirm_lockout(db.session, agent, reporter=reporter)


def test_lockout_shows_each_factor_and_override_needs_a_reason(
    agent: StaffUser, create_case: Callable[..., Case], smtp: SmtpServer
) -> None:
    lockout = lock_out(agent, create_case, smtp)
    names = [f["name"] for f in lockout.factors]
    assert "seriousness of the latest mark" in names
    assert sum(f["days"] for f in lockout.factors) == lockout.proposed_days
    assert (lockout.ends_at - lockout.starts_at).days == lockout.proposed_days
    # A second lockout for the same reporter, overridden.
    reporter = db.session.get_one(Reporter, lockout.reporter_id)
    mark(agent, create_case(requester_email=ADDRESS), seriousness="severe", intent="bad_faith")
    with pytest.raises(AbuseError, match="written reason"):
        abuse.confirm_lockout(db.session, agent, reporter=reporter, override_days=3)
    second = abuse.confirm_lockout(
        db.session,
        agent,
        reporter=reporter,
        override_days=3,
        override_reason="First offence in a year",
    )
    assert (second.ends_at - second.starts_at).days == 3
    assert second.override_reason == "First offence in a year"
    assert second.proposed_days > lockout.proposed_days  # repeat lockouts grow


@pytest.mark.parametrize("variant", VARIANTS)
def test_web_refuses_every_address_variant_calmly(
    client: FlaskClient,
    agent: StaffUser,
    create_case: Callable[..., Case],
    smtp: SmtpServer,
    variant: str,
) -> None:
    lockout = lock_out(agent, create_case, smtp)
    before = len(db.session.scalars(select(Case)).all())
    response = post_form(client, "/requests/new", valid_request(requester_email=variant))
    html = response.get_data(as_text=True)
    assert response.status_code == 403
    assert lockout.ends_at.strftime("%-d %B %Y") in html
    assert "not accepting requests" in html
    assert len(db.session.scalars(select(Case)).all()) == before
    attempt = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "lockout.refused")
    ).one()
    assert attempt.details["lockout_id"] == lockout.id
    assert "gmail" not in str(attempt.details)


def test_child_protection_goes_through_during_a_lockout(
    client: FlaskClient, agent: StaffUser, create_case: Callable[..., Case], smtp: SmtpServer
) -> None:
    lock_out(agent, create_case, smtp)
    response = post_form(
        client,
        "/requests/new",
        {
            "action": "child_protection",
            "summary": "A minor is at risk.",
            "requester_email": ADDRESS,
        },
    )
    assert response.status_code == 303
    case = db.session.scalars(select(Case).where(Case.action == "child_protection")).one()
    first = case.messages[0]
    assert first.urgent is True
    assert "locked out" in (first.flag_reason or "")


def test_lockout_ends_by_itself_and_can_be_lifted_early(
    agent: StaffUser, create_case: Callable[..., Case], smtp: SmtpServer
) -> None:
    lockout = lock_out(agent, create_case, smtp)
    assert abuse.active_lockout(db.session, "JaneDoe@googlemail.com") is not None
    assert (
        abuse.active_lockout(db.session, ADDRESS, now=lockout.ends_at - timedelta(seconds=1))
        is not None
    )
    assert abuse.active_lockout(db.session, ADDRESS, now=lockout.ends_at) is None
    with pytest.raises(AbuseError):
        abuse.lift_lockout(db.session, agent, lockout, reason="  ")
    abuse.lift_lockout(db.session, agent, lockout, reason="Apologised and withdrew the threats")
    db.session.commit()
    assert abuse.active_lockout(db.session, ADDRESS) is None
    lifted = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "abuse.lockout_lifted")
    ).one()
    assert lifted.details == {"lockout_id": lockout.id, "reporter_id": lockout.reporter_id}


def test_staff_mark_warn_and_lock_out_through_the_pages(
    auth: Auth,
    client: FlaskClient,
    agent: StaffUser,
    create_case: Callable[..., Case],
    smtp: SmtpServer,
) -> None:
    case = create_case(requester_email=ADDRESS)
    auth.login(agent)
    token = csrf_token(client.get(f"/staff/cases/{case.id}"))
    response = client.post(
        f"/staff/cases/{case.id}/abuse",
        data={
            "csrf_token": token,
            "category": "preferential_treatment",
            "seriousness": "minor",
            "intent": "good_faith",
            "note": "Wants control of the article.",
        },
    )
    reporter_url = response.headers["Location"]
    page = client.get(reporter_url).get_data(as_text=True)
    assert "Proposed: a warning" in page
    assert "/policy/abuse" in page
    mark_id = db.session.scalars(select(abuse.AbuseMark)).one().id
    response = client.post(
        reporter_url + "/warning",
        data={
            "csrf_token": token,
            "mark_id": str(mark_id),
            "text": "Please do not ask for control of articles. See http://localhost/policy/abuse",
        },
    )
    assert response.status_code == 303
    work_outbox(client.application)
    warning_mail = smtp.wait_for(1)[0]
    assert warning_mail.rcpt_tos == [ADDRESS]
    assert "control of articles" in warning_mail.message().get_content()

    second = create_case(requester_email="JaneDoe+again@gmail.com")
    client.post(
        f"/staff/cases/{second.id}/abuse",
        data={
            "csrf_token": token,
            "category": "threat_or_harassment_of_staff",
            "seriousness": "severe",
            "intent": "bad_faith",
            "note": "Threats.",
        },
    )
    page = client.get(reporter_url).get_data(as_text=True)
    assert "Proposed: a lockout of" in page
    assert "presumed intent" in page
    assert client.post(reporter_url + "/lockout", data={"csrf_token": token}).status_code == 303
    page = client.get(reporter_url).get_data(as_text=True)
    assert "Locked out until" in page


def test_quarantine_release_opens_a_case_in_the_mailbox_queue(
    auth: Auth, client: FlaskClient, agent: StaffUser
) -> None:
    message = Message(
        direction="inbound",
        channel="mail",
        mailbox="appeals",
        sender=ADDRESS,
        subject="Urgent: court order",
        body_text="Attached is a court order.",
        quarantined=True,
        urgent=True,
        flag_reason="court order",
    )
    db.session.add(message)
    db.session.commit()
    assert quarantine.urgent_waiting(db.session, agent) == 1
    auth.login(agent)
    inbox = client.get("/staff/").get_data(as_text=True)
    assert "1 urgent message in quarantine" in inbox
    page = client.get("/staff/quarantine")
    assert "Urgent: court order" in page.get_data(as_text=True)
    response = client.post(
        f"/staff/quarantine/{message.id}/release", data={"csrf_token": csrf_token(page)}
    )
    assert response.status_code == 303
    db.session.expire_all()
    released = db.session.get_one(Message, message.id)
    assert released.quarantined is False
    case = db.session.get_one(Case, released.case_id)
    assert (case.team, case.kind) == ("appeals", "inquiry")
    assert quarantine.urgent_waiting(db.session, agent) == 0


def test_quarantine_shows_staff_only_mail_of_cases_they_may_see(
    auth: Auth,
    client: FlaskClient,
    agent: StaffUser,
    create_case: Callable[..., Case],
    create_staff: Callable[..., StaffUser],
) -> None:
    """A reply from a locked-out reporter into a Legal case waits in quarantine: Trust &
    Safety, who may not see that case, must not read it there either; Legal's admin may."""
    legal_case = create_case("dmca", requester_email=ADDRESS)
    held = Message(
        case_id=legal_case.id,
        direction="inbound",
        channel="mail",
        mailbox="ca",
        sender=ADDRESS,
        subject="Counter-notice details",
        quarantined=True,
        urgent=True,
    )
    db.session.add(held)
    db.session.commit()
    admin = create_staff("admin")
    assert quarantine.urgent_waiting(db.session, agent) == 0
    assert quarantine.urgent_waiting(db.session, admin) == 1

    auth.login(agent)
    assert "Counter-notice details" not in client.get("/staff/quarantine").get_data(as_text=True)
    assert "urgent message in quarantine" not in client.get("/staff/").get_data(as_text=True)


def test_quarantined_mail_stays_off_the_timeline_and_its_files_are_not_served(
    auth: Auth, client: FlaskClient, agent: StaffUser, create_case: Callable[..., Case]
) -> None:
    case = create_case(requester_email=ADDRESS)
    held = Message(
        case_id=case.id,
        direction="inbound",
        channel="mail",
        sender=ADDRESS,
        subject="Held back for now",
        quarantined=True,
    )
    db.session.add(held)
    db.session.flush()
    stored = BlobStore(get_settings().blob_dir).put(b"%PDF-1.4 held")  # the file exists
    attachment = Attachment(
        message_id=held.id,
        filename="a.pdf",
        content_type="application/pdf",
        size=stored.size,
        sha256=stored.sha256,
    )
    db.session.add(attachment)
    db.session.commit()
    auth.login(agent)
    assert "Held back for now" not in client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert client.get(f"/staff/attachments/{attachment.id}").status_code == 404


def test_abuse_policy_page_publishes_the_rule_with_examples(client: FlaskClient) -> None:
    html = client.get("/policy/abuse").get_data(as_text=True)
    assert "Seriousness" in html
    assert "No pause lasts more than one year" in html
    assert "13 days" in html  # the first example, computed by the rule itself


def test_lockouts_list_command(
    runner: FlaskCliRunner, agent: StaffUser, create_case: Callable[..., Case], smtp: SmtpServer
) -> None:
    assert runner.invoke(args=["lockouts", "list"]).output.strip() == "no active lockouts"
    lockout = lock_out(agent, create_case, smtp)
    output = runner.invoke(args=["lockouts", "list"]).output
    assert f"lockout #{lockout.id}" in output
    assert "janedoe@gmail.com" in output
    assert utcnow().strftime("%Y-%m-%d") in output


def test_appeal_form_refuses_a_locked_out_address_too(
    client: FlaskClient, agent: StaffUser, create_case: Callable[..., Case], smtp: SmtpServer
) -> None:
    lockout = lock_out(agent, create_case, smtp)
    case = db.session.scalars(select(Case).order_by(Case.id)).first()
    response = post_form(
        client,
        "/appeals/new",
        {
            "case_reference": case.reference if case else "",
            "appellant_email": "Jane.Doe+appeal@gmail.com",
            "appellant_role": "requester",
            "reasons": "I disagree.",
        },
    )
    assert response.status_code == 403
    assert lockout.ends_at.strftime("%-d %B %Y") in response.get_data(as_text=True)
