"""Reviewing an appeal: what its reviewers see of the decision, and recording the outcome.

Reviewers see the appeal and the decision under review (what was decided, why, when), not the
rest of a confidential file: the timeline, the requester and the parties stay with Trust &
Safety unless Trust & Safety shares the case with the committee (``shared_with_reviewers``,
enforced in portal.access). The person who made a decision never decides its appeal, and each
outcome is given with written reasons, mailed to the appellant (DSA Art. 20: decided by
qualified people, not by automation alone, and answered with reasons).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.access import get_visible_case, visible_cases
from portal.config import Settings
from portal.models import Appeal, Case, StaffUser
from portal.models.base import utcnow
from portal.policy.actions import CaseStatus, rule_for
from portal.policy.appeals import (
    OUTCOME_LABELS,
    ROUTE_LABELS,
    ROUTE_TEAM,
    AppealState,
    Outcome,
    Route,
    route_of,
)
from portal.policy.mail import MailPurpose
from portal.policy.permissions import (
    why_cannot_decide_appeal,
    why_cannot_refer,
    why_cannot_share,
)
from portal.services import audit
from portal.services.case_actions import CaseActionError, record_change
from portal.services.outbound import queue_template_mail

log = logging.getLogger(__name__)


class AppealError(CaseActionError):
    """An appeal action the rules do not allow; the message is fit to show to staff."""


@dataclass(frozen=True)
class DecisionUnderReview:
    """The restricted view of an appealed case: the decision, and nothing else of the file."""

    case_id: int
    reference: str
    kind: str
    action_label: str | None
    decision: str | None
    decision_details: str | None
    decided_at: datetime | None
    modified_at: datetime | None
    scope_location: str | None
    scope_project: str | None
    scope_until: date | None
    part_of_global_ban: bool
    irrevocable: bool
    overruled_at: datetime | None
    #: the viewer may also open the whole case (their own team's, or shared with reviewers)
    full_file: bool


@dataclass(frozen=True)
class ReviewPage:
    appeal_case: Case
    appeal: Appeal | None
    decision: DecisionUnderReview | None
    #: why this user may not record an outcome; None when they may
    blocked: str | None


@dataclass
class AppealsPanel:
    """What the case page says about appeals: those of this case, or the case this appeals."""

    appeals: list[tuple[Appeal, Case | None]] = field(default_factory=list)
    visible_ids: set[int] = field(default_factory=set)
    refused: int = 0
    pending: int = 0
    appeal_of: Case | None = None


def decision_under_review(session: Session, user: StaffUser, case: Case) -> DecisionUnderReview:
    return DecisionUnderReview(
        case_id=case.id,
        reference=case.reference or f"#{case.id}",
        kind=case.kind,
        action_label=rule_for(case.action).label if case.action else None,
        decision=case.decision,
        decision_details=case.decision_details,
        decided_at=case.decided_at,
        modified_at=case.modified_at,
        scope_location=case.scope_location,
        scope_project=case.scope_project,
        scope_until=case.scope_until,
        part_of_global_ban=case.part_of_global_ban,
        irrevocable=case.irrevocable,
        overruled_at=case.overruled_at,
        full_file=get_visible_case(session, user, case.id) is not None,
    )


def appeal_of_case(session: Session, appeal_case: Case) -> Appeal | None:
    return session.scalar(select(Appeal).where(Appeal.appeal_case_id == appeal_case.id))


def why_cannot_decide(user: StaffUser, appeal: Appeal | None, original: Case | None) -> str | None:
    """The one sentence that explains why ``user`` may not decide, or None (the rule:
    portal.policy.permissions.why_cannot_decide_appeal)."""
    state: str | None = None  # None: no confirmed appeal recorded
    route: str | None = None
    decided_by_id: int | None = None
    if appeal is not None and original is not None:
        state, route, decided_by_id = appeal.state, appeal.route, original.decided_by_id
    return why_cannot_decide_appeal(
        staff_id=user.id, roles=user.roles, state=state, route=route, decided_by_id=decided_by_id
    )


def review_page(session: Session, user: StaffUser, appeal_case: Case) -> ReviewPage:
    """Everything the review page shows; ``appeal_case`` was loaded through portal.access."""
    appeal = appeal_of_case(session, appeal_case)
    original_id = appeal.case_id if appeal else appeal_case.appeal_of_id
    original = session.get(Case, original_id) if original_id else None
    return ReviewPage(
        appeal_case=appeal_case,
        appeal=appeal,
        decision=decision_under_review(session, user, original) if original else None,
        blocked=why_cannot_decide(user, appeal, original),
    )


def record_outcome(
    session: Session,
    settings: Settings,
    secret_key: str,
    *,
    staff: StaffUser,
    appeal_case: Case,
    outcome: str,
    reasons: str,
    now: datetime | None = None,
) -> int:
    """Decide an appeal: ratified, overturned (the decision is marked overruled) or sent back
    for reconsideration (the case reopens). Returns the outcome mail to deliver after commit."""
    now = now or utcnow()
    appeal = appeal_of_case(session, appeal_case)
    original = session.get(Case, appeal.case_id) if appeal else None
    blocked = why_cannot_decide(staff, appeal, original)
    if blocked or appeal is None or original is None:
        raise AppealError(blocked or "There is no appeal to decide.")
    try:
        decided = Outcome(outcome)
    except ValueError:
        raise AppealError("An appeal is ratified, overturned or sent back to reconsider.") from None
    if not reasons.strip():
        raise AppealError("Give the reasons for the outcome: the appellant receives them.")

    appeal.state = AppealState.DECIDED
    appeal.outcome = decided.value
    appeal.outcome_reasons = reasons.strip()
    appeal.decided_at = now
    appeal.decided_by_id = staff.id
    status_before = appeal_case.status
    appeal_case.status = CaseStatus.DECIDED
    appeal_case.updated_at = now
    _audit(session, staff, appeal_case, "appeal.decided", appeal, now, status_before=status_before)
    if decided is Outcome.OVERTURNED:
        original.overruled_at = now
        _audit(session, staff, original, "case.overruled", appeal, now)
    elif decided is Outcome.RECONSIDER:
        before = original.status
        original.status = CaseStatus.OPEN
        _audit(session, staff, original, "case.reconsider", appeal, now, status_before=before)
    original.updated_at = now

    context = {
        "appeal": appeal,
        "appeal_case": appeal_case,
        "case": original,
        "outcome": decided.value,
        "outcome_label": OUTCOME_LABELS[decided],
        "reasons": appeal.outcome_reasons,
    }
    mail = queue_template_mail(
        session,
        settings,
        secret_key,
        template="appeal_outcome",
        context=context,
        case=appeal_case,
        to=appeal.appellant_email,
        subject=f"[{appeal_case.reference}] The outcome of your appeal of {original.reference}",
        purpose=MailPurpose.APPEAL_OUTCOME,
        author_staff_id=staff.id,
        now=now,
    )
    log.info("appeal %s of %s decided: %s", appeal_case.reference, original.reference, decided)
    return mail.id


def refer_to_committee(
    session: Session, *, staff: StaffUser, appeal_case: Case, now: datetime | None = None
) -> None:
    """Legal found the appeal eligible (or Trust & Safety passes it on): the committee's queue."""
    now = now or utcnow()
    appeal = appeal_of_case(session, appeal_case)
    refusal = why_cannot_refer(
        roles=staff.roles,
        state=appeal.state if appeal is not None else None,
        route=appeal.route if appeal is not None else None,
    )
    if refusal is not None or appeal is None:
        raise AppealError(refusal or "There is no appeal to refer.")
    route = route_of(appeal.route)
    before = {"route": appeal.route, "team": appeal_case.team}
    appeal.route = Route.COMMITTEE.value
    appeal.route_reason = f"Referred to the committee by {ROUTE_LABELS[route]}."
    appeal_case.team = ROUTE_TEAM[Route.COMMITTEE].value
    after = {"route": appeal.route, "team": appeal_case.team}
    record_change(session, staff, appeal_case, "appeal.referred", before, after, now)


def share_with_reviewers(
    session: Session, *, staff: StaffUser, case: Case, shared: bool, now: datetime | None = None
) -> None:
    """Trust & Safety let the committee read the whole file of a case under appeal, or stop."""
    now = now or utcnow()
    refusal = why_cannot_share(roles=staff.roles, team=case.team)
    if refusal:
        raise AppealError(refusal)
    before = case.shared_with_reviewers
    case.shared_with_reviewers = shared
    if before == shared:
        return
    record_change(
        session,
        staff,
        case,
        "case.shared_with_reviewers",
        {"shared": before},
        {"shared": shared},
        now,
    )


def appeals_panel(session: Session, user: StaffUser, case: Case) -> AppealsPanel:
    """For the case page: the appeals of this case, or (for an appeal) the case it appeals."""
    panel = AppealsPanel()
    if case.appeal_of_id is not None:
        panel.appeal_of = session.get(Case, case.appeal_of_id)
    rows = session.scalars(
        select(Appeal).where(Appeal.case_id == case.id).order_by(Appeal.id)
    ).all()
    appeal_case_ids = [row.appeal_case_id for row in rows if row.appeal_case_id is not None]
    cases = (
        {c.id: c for c in session.scalars(select(Case).where(Case.id.in_(appeal_case_ids)))}
        if appeal_case_ids
        else {}
    )
    panel.visible_ids = (
        set(
            session.scalars(
                visible_cases(user).where(Case.id.in_(appeal_case_ids)).with_only_columns(Case.id)
            )
        )
        if appeal_case_ids
        else set()
    )
    for row in rows:
        if row.state in (AppealState.OPEN, AppealState.DECIDED):
            panel.appeals.append((row, cases.get(row.appeal_case_id or 0)))
        elif row.state == AppealState.REFUSED:
            panel.refused += 1
        else:
            panel.pending += 1
    return panel


def _audit(
    session: Session,
    staff: StaffUser,
    case: Case,
    action: str,
    appeal: Appeal,
    now: datetime,
    *,
    status_before: str | None = None,
) -> None:
    details: dict[str, object] = {"appeal_id": appeal.id, "outcome": appeal.outcome}
    if status_before is not None:
        details["before"] = {"status": status_before}
        details["after"] = {"status": case.status}
    audit.record(
        session,
        actor=audit.staff_actor(staff),
        action=action,
        case_id=case.id,
        details=details,
        now=now,
    )
