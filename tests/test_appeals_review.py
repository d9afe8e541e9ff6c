"""Reviewing an appeal (issue 5): the restricted view, sharing, the original decider barred,
outcomes with reasons mailed through a real SMTP server, and the overruled mark."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import Appeal, AuditEvent, Case, StaffUser
from portal.models.base import utcnow
from portal.policy.mail import MailPurpose
from tests.appeals_helpers import REQUESTER, SUBJECT, confirmed_appeal, decided_case, outbox
from tests.conftest import csrf_token, work_outbox
from tests.factories import Auth
from tests.servers.smtp import SmtpServer


@pytest.fixture
def app_config(smtp: SmtpServer) -> dict[str, Any]:
    return {"MAIL_SERVER": smtp.host, "MAIL_PORT": smtp.port}


@pytest.fixture
def decider(create_staff: Callable[..., StaffUser]) -> StaffUser:
    return create_staff("trust_safety", "appeals_reviewer", name="Decider")


@pytest.fixture
def reviewer(create_staff: Callable[..., StaffUser]) -> StaffUser:
    return create_staff("appeals_reviewer", name="Reviewer")


@pytest.fixture
def original(create_case: Callable[..., Case], decider: StaffUser) -> Case:
    return decided_case(create_case, decider, decided_at=utcnow().replace(microsecond=0))


@pytest.fixture
def appeal(app: Flask, original: Case) -> tuple[Appeal, Case]:
    return confirmed_appeal(str(app.secret_key), original)


def post(client: FlaskClient, url: str, data: dict[str, str], page_url: str) -> Any:
    token = csrf_token(client.get(page_url))
    return client.post(url, data={**data, "csrf_token": token})


def decide(client: FlaskClient, appeal_case: Case, outcome: str, reasons: str) -> Any:
    review = f"/staff/appeals/{appeal_case.id}"
    return post(
        client,
        f"{review}/outcome",
        {"outcome": outcome, "reasons": reasons},
        review,
    )


def test_reviewers_see_the_decision_but_not_the_confidential_file(
    auth: Auth,
    client: FlaskClient,
    reviewer: StaffUser,
    original: Case,
    appeal: tuple[Appeal, Case],
) -> None:
    _, appeal_case = appeal
    auth.login(reviewer)
    page = client.get(f"/staff/appeals/{appeal_case.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert original.reference in html
    assert "Reasons of the decision: repeated harassment" in html
    assert "Global ban" in html
    assert "granted" in html
    assert "The ban rests on a misread diff." in html  # the appeal itself
    # Not the file: no timeline, no requester, no parties, no link to the case.
    assert REQUESTER not in html
    assert "Harassment across wikis" not in html  # the request's summary
    assert f"/staff/cases/{original.id}" not in html
    assert "have not shared the rest of this case file" in html
    assert client.get(f"/staff/cases/{original.id}").status_code == 404
    assert REQUESTER not in client.get(f"/staff/cases/{appeal_case.id}").get_data(as_text=True)


def test_trust_and_safety_may_share_the_whole_file_with_reviewers(
    auth: Auth,
    client: FlaskClient,
    create_staff: Callable[..., StaffUser],
    reviewer: StaffUser,
    original: Case,
    appeal: tuple[Appeal, Case],
) -> None:
    _, appeal_case = appeal
    share_url = f"/staff/cases/{original.id}/share-with-reviewers"
    auth.login(reviewer)
    refused = post(client, share_url, {"shared": "y"}, "/staff/")
    assert refused.status_code == 404  # a reviewer cannot even address the hidden case

    auth.logout()
    auth.login(create_staff("trust_safety"))
    case_page = f"/staff/cases/{original.id}"
    assert "Let the case review committee read" in client.get(case_page).get_data(as_text=True)
    assert post(client, share_url, {"shared": "y"}, case_page).status_code == 303
    db.session.refresh(original)
    assert original.shared_with_reviewers is True
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "case.shared_with_reviewers")
    ).one()
    assert event.details == {"before": {"shared": False}, "after": {"shared": True}}

    auth.logout()
    auth.login(reviewer)
    assert client.get(case_page).status_code == 200
    review = client.get(f"/staff/appeals/{appeal_case.id}").get_data(as_text=True)
    assert f'href="/staff/cases/{original.id}"' in review


def test_the_original_decider_cannot_decide_the_appeal(
    auth: Auth,
    client: FlaskClient,
    decider: StaffUser,
    appeal: tuple[Appeal, Case],
    smtp: SmtpServer,
) -> None:
    record, appeal_case = appeal
    auth.login(decider)
    page = client.get(f"/staff/appeals/{appeal_case.id}").get_data(as_text=True)
    assert "You made the decision under appeal" in page
    assert "Record the outcome" not in page
    response = decide(client, appeal_case, "overturned", "I changed my mind.")
    assert response.status_code == 303
    follow = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You made the decision under appeal" in follow
    db.session.refresh(record)
    assert (record.state, record.outcome) == ("open", None)
    assert outbox(MailPurpose.APPEAL_OUTCOME) == []


def test_overturned_mails_the_reasons_and_marks_the_decision_overruled(
    auth: Auth,
    client: FlaskClient,
    create_staff: Callable[..., StaffUser],
    reviewer: StaffUser,
    original: Case,
    appeal: tuple[Appeal, Case],
    smtp: SmtpServer,
) -> None:
    record, appeal_case = appeal
    work_outbox(client.application)  # what filing the appeal queued
    smtp.clear()
    auth.login(reviewer)
    response = decide(client, appeal_case, "overturned", "The diffs were made by someone else.")
    assert response.status_code == 303

    work_outbox(client.application)
    mail = smtp.wait_for(1)[0]
    message = mail.message()
    assert mail.rcpt_tos == [SUBJECT]
    assert message["From"] == "appeals@example.org"
    assert message["Subject"] == (
        f"[{appeal_case.reference}] The outcome of your appeal of {original.reference}"
    )
    assert message["Auto-Submitted"] is None  # people decided this, not a robot
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "Overturned" in text
    assert "The diffs were made by someone else." in text

    db.session.refresh(record)
    db.session.refresh(original)
    db.session.refresh(appeal_case)
    assert (record.state, record.outcome, record.decided_by_id) == (
        "decided",
        "overturned",
        reviewer.id,
    )
    assert appeal_case.status == "decided"
    assert original.overruled_at is not None
    assert original.decision == "granted"  # kept on record, marked overruled

    review = client.get(f"/staff/appeals/{appeal_case.id}").get_data(as_text=True)
    assert "The diffs were made by someone else." in review
    auth.logout()
    auth.login(create_staff("trust_safety"))
    case_page = client.get(f"/staff/cases/{original.id}").get_data(as_text=True)
    assert "overruled on appeal" in case_page
    assert appeal_case.reference in case_page


@pytest.mark.parametrize(("outcome", "status"), [("reconsider", "open"), ("ratified", "decided")])
def test_reconsider_sends_the_case_back_and_ratified_keeps_it(
    auth: Auth,
    client: FlaskClient,
    reviewer: StaffUser,
    original: Case,
    appeal: tuple[Appeal, Case],
    smtp: SmtpServer,
    outcome: str,
    status: str,
) -> None:
    _, appeal_case = appeal
    work_outbox(client.application)  # what filing the appeal queued
    smtp.clear()
    auth.login(reviewer)
    decide(client, appeal_case, outcome, "Reasons for the appellant.")
    db.session.refresh(original)
    assert original.status == status
    assert original.overruled_at is None
    work_outbox(client.application)
    (mail,) = smtp.wait_for(1)
    assert "The outcome of your appeal" in mail.message()["Subject"]


def test_an_appeal_is_decided_once_and_only_with_reasons(
    auth: Auth,
    client: FlaskClient,
    reviewer: StaffUser,
    appeal: tuple[Appeal, Case],
    smtp: SmtpServer,
) -> None:
    record, appeal_case = appeal
    auth.login(reviewer)
    assert decide(client, appeal_case, "ratified", "").status_code == 303
    db.session.refresh(record)
    assert record.state == "open"
    decide(client, appeal_case, "ratified", "The decision was right.")
    decide(client, appeal_case, "overturned", "Second thoughts.")
    db.session.refresh(record)
    assert (record.outcome, record.outcome_reasons) == ("ratified", "The decision was right.")
    assert len(outbox(MailPurpose.APPEAL_OUTCOME)) == 1


def test_committee_appeals_are_decided_by_the_committee(
    auth: Auth,
    client: FlaskClient,
    create_staff: Callable[..., StaffUser],
    appeal: tuple[Appeal, Case],
) -> None:
    record, appeal_case = appeal
    auth.login(create_staff("trust_safety"))
    page = client.get(f"/staff/appeals/{appeal_case.id}").get_data(as_text=True)
    assert "only they can decide it" in page
    decide(client, appeal_case, "overturned", "Not mine to decide.")
    db.session.refresh(record)
    assert record.state == "open"


def test_legal_decides_eligibility_then_refers_to_the_committee(
    app: Flask,
    auth: Auth,
    client: FlaskClient,
    create_case: Callable[..., Case],
    create_staff: Callable[..., StaffUser],
    decider: StaffUser,
    reviewer: StaffUser,
) -> None:
    case = decided_case(create_case, decider, action="page_protection", decided_at=utcnow())
    case.team = "legal"
    db.session.commit()
    record, appeal_case = confirmed_appeal(str(app.secret_key), case)
    assert (appeal_case.team, record.route) == ("legal", "legal")

    auth.login(reviewer)
    assert client.get(f"/staff/appeals/{appeal_case.id}").status_code == 404
    auth.logout()
    auth.login(create_staff("legal"))
    review = f"/staff/appeals/{appeal_case.id}"
    assert "refer to the case review committee" in client.get(review).get_data(as_text=True)
    assert post(client, f"{review}/refer", {}, review).status_code == 303
    db.session.refresh(record)
    db.session.refresh(appeal_case)
    assert (appeal_case.team, record.route) == ("appeals", "committee")
    auth.logout()
    auth.login(reviewer)
    assert client.get(review).status_code == 200


def test_an_appeal_case_with_no_filed_appeal_has_nothing_to_decide(
    auth: Auth,
    client: FlaskClient,
    create_case: Callable[..., Case],
    reviewer: StaffUser,
    original: Case,
) -> None:
    by_hand = create_case(team="appeals", kind="appeal", appeal_of_id=original.id)
    auth.login(reviewer)
    page = client.get(f"/staff/appeals/{by_hand.id}").get_data(as_text=True)
    assert "No confirmed appeal is recorded" in page
    assert "Reasons of the decision" in page  # the decision is still shown, restricted


def test_a_non_appeal_case_redirects_to_its_case_page(
    auth: Auth, client: FlaskClient, create_staff: Callable[..., StaffUser], original: Case
) -> None:
    auth.login(create_staff("trust_safety"))
    response = client.get(f"/staff/appeals/{original.id}")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/staff/cases/{original.id}")


def test_the_decision_form_records_the_event_ban_facts_appeals_need(
    auth: Auth,
    client: FlaskClient,
    create_case: Callable[..., Case],
    create_staff: Callable[..., StaffUser],
) -> None:
    case = create_case("event_ban")
    auth.login(create_staff("trust_safety"))
    page = f"/staff/cases/{case.id}"
    assert "Part of (or led to) a global ban" in client.get(page).get_data(as_text=True)
    response = post(
        client,
        f"{page}/decision",
        {"decision": "granted", "details": "Banned from events.", "part_of_global_ban": "y"},
        page,
    )
    assert response.status_code == 303
    db.session.refresh(case)
    assert (case.part_of_global_ban, case.irrevocable) == (True, False)
