"""Acting on a case: assignment, status, classification, parties, decisions, notes, and the
hash-chained audit trail that records each change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, text

from portal.extensions import db
from portal.models import AuditEvent, Case, CaseParty, Message, StaffUser
from portal.models.base import utcnow
from portal.services import case_actions
from portal.services.case_actions import CaseActionError
from tests.conftest import csrf_token
from tests.factories import Auth


@pytest.fixture
def staff(create_staff: Callable[..., StaffUser]) -> StaffUser:
    return create_staff("trust_safety", "admin")


def last_event(case: Case) -> AuditEvent:
    return db.session.scalars(
        select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.id.desc())
    ).first()  # type: ignore[return-value]


def test_assign_opens_a_new_case_and_audits_before_and_after(
    staff: StaffUser, create_case: Callable[..., Case]
) -> None:
    case = create_case()
    case_actions.assign(db.session, staff, case, staff)
    assert (case.assignee_id, case.status) == (staff.id, "open")
    event = last_event(case)
    assert (event.actor, event.action) == (f"staff:{staff.id}", "case.assigned")
    assert event.details == {"before": {"assignee_id": None}, "after": {"assignee_id": staff.id}}


def test_a_disabled_account_is_never_made_assignee(
    staff: StaffUser, create_case: Callable[..., Case], create_staff: Callable[..., StaffUser]
) -> None:
    """The page offers active staff only; the service holds the rule, so a forged POST
    cannot send a case to an account that no one reads."""
    gone = create_staff("trust_safety")
    gone.active = False
    case = create_case()
    with pytest.raises(CaseActionError, match="disabled"):
        case_actions.assign(db.session, staff, case, gone)
    assert case.assignee_id is None


def test_status_decided_needs_a_decision(
    staff: StaffUser, create_case: Callable[..., Case]
) -> None:
    case = create_case()
    with pytest.raises(CaseActionError):
        case_actions.change_status(db.session, staff, case, "decided")
    case_actions.change_status(db.session, staff, case, "waiting")
    assert case.status == "waiting"


def test_reclassifying_restarts_the_policy_clock(
    staff: StaffUser, create_case: Callable[..., Case]
) -> None:
    case = create_case("conduct_warning")
    assert case.due_at is None
    now = utcnow()
    case_actions.classify(
        db.session,
        staff,
        case,
        action="child_protection",
        team="trust_safety",
        confidential=True,
        now=now,
    )
    assert case.due_at == now + timedelta(hours=24)
    assert case.queue_due_at == case.due_at
    assert (case.priority, case.confidential) == ("urgent", True)
    assert last_event(case).details["after"]["action"] == "child_protection"


def test_party_is_stored_canonical_and_audited_without_the_address(
    staff: StaffUser, create_case: Callable[..., Case]
) -> None:
    case = create_case()
    case_actions.add_party(
        db.session, staff, case, address="Sub.Ject+x@GoogleMail.com", role="subject"
    )
    party = db.session.scalars(select(CaseParty).where(CaseParty.role == "subject")).one()
    assert party.address == "subject@gmail.com"
    assert "gmail" not in str(last_event(case).details)
    with pytest.raises(CaseActionError):
        case_actions.add_party(db.session, staff, case, address="subject@gmail.com", role="subject")


def test_event_ban_decision_records_its_scope(
    staff: StaffUser, create_case: Callable[..., Case]
) -> None:
    case = create_case("event_ban")
    until = (utcnow() + timedelta(days=365)).date()
    case_actions.record_decision(
        db.session,
        staff,
        case,
        decision="granted",
        details="Harassment at two events.",
        scope_location="Berlin",
        scope_project="Wikimania",
        scope_until=until,
    )
    assert (case.decision, case.status, case.decided_by_id) == ("granted", "decided", staff.id)
    assert (case.scope_location, case.scope_project, case.scope_until) == (
        "Berlin",
        "Wikimania",
        until,
    )


def test_only_substantial_modifications_move_the_appeal_window(
    staff: StaffUser, create_case: Callable[..., Case]
) -> None:
    case = create_case()
    with pytest.raises(CaseActionError):
        case_actions.record_modification(db.session, staff, case, details="x", substantial=True)
    case_actions.record_decision(
        db.session, staff, case, decision="declined", details="Not enough evidence."
    )
    case_actions.record_modification(
        db.session, staff, case, details="Extended by 3 months", substantial=False
    )
    assert case.modified_at is None
    later = utcnow() + timedelta(days=1)
    case_actions.record_modification(
        db.session, staff, case, details="Scope widened", substantial=True, now=later
    )
    assert case.modified_at == later.replace(microsecond=later.microsecond)
    notes = [m for m in case.messages if m.direction == "note"]
    assert len(notes) == 2


def test_case_page_shows_timeline_clock_and_audit(
    auth: Auth, client: FlaskClient, staff: StaffUser, create_case: Callable[..., Case]
) -> None:
    case = create_case("child_protection", summary="Grooming <b>attempt</b>")
    auth.login(staff)
    html = client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert case.reference in html
    assert "Grooming &lt;b&gt;attempt&lt;/b&gt;" in html
    assert "hours left" in html
    assert "case.opened" in html


def test_forms_on_the_case_page_change_the_case(
    auth: Auth, client: FlaskClient, staff: StaffUser, create_case: Callable[..., Case]
) -> None:
    case = create_case()
    auth.login(staff)
    page = client.get(f"/staff/cases/{case.id}")
    token = csrf_token(page)
    base = f"/staff/cases/{case.id}"
    assert (
        client.post(
            f"{base}/assign", data={"csrf_token": token, "assignee": str(staff.id)}
        ).status_code
        == 303
    )
    assert (
        client.post(
            f"{base}/note", data={"csrf_token": token, "body": "Checked the diffs."}
        ).status_code
        == 303
    )
    assert (
        client.post(f"{base}/status", data={"csrf_token": token, "status": "in_review"}).status_code
        == 303
    )
    response = client.post(
        f"{base}/decision", data={"csrf_token": token, "decision": "granted", "details": "Banned."}
    )
    assert response.status_code == 303
    db.session.expire_all()
    case = db.session.get(Case, case.id)
    assert (case.assignee_id, case.status, case.decision) == (staff.id, "decided", "granted")
    note = db.session.scalars(select(Message).where(Message.direction == "note")).one()
    assert note.body_text == "Checked the diffs."
    html = client.get(base).get_data(as_text=True)
    assert "Staff note" in html
    assert "case.decided" in html


@pytest.mark.parametrize("tampering", ["edit", "delete"])
def test_audit_verify_names_where_the_chain_breaks(
    runner: FlaskCliRunner, staff: StaffUser, create_case: Callable[..., Case], tampering: str
) -> None:
    """An edited event breaks at itself; a deleted one at the event after it, whose link
    now points at nothing."""
    case = create_case()
    case_actions.assign(db.session, staff, case, staff)
    case_actions.change_status(db.session, staff, case, "waiting")
    db.session.commit()
    ok = runner.invoke(args=["audit", "verify"])
    assert (ok.exit_code, ok.output.strip()) == (0, "audit trail intact")

    target = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "case.assigned")
    ).one()
    following = db.session.scalars(
        select(AuditEvent.id).where(AuditEvent.id > target.id).order_by(AuditEvent.id)
    ).first()
    if tampering == "edit":
        db.session.execute(
            text("UPDATE audit_events SET details = :d WHERE id = :id"),
            {"d": '{"before": {}, "after": {"assignee_id": 999}}', "id": target.id},
        )
        expected = target.id
    else:
        db.session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": target.id})
        expected = following
    db.session.commit()
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert broken.output.strip() == f"audit trail BROKEN at event(s): {expected}"
