"""The review of an appeal: its page, its outcome, and what Trust & Safety share with reviewers.

Each page loads its case through portal.access, like every staff page. The decision under
appeal is shown in its restricted form (portal.services.appeal_review), so a reviewer reads
what was decided and why, not the confidential file behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal.config import get_settings
from portal.extensions import db
from portal.models import Case
from portal.models.base import utcnow
from portal.policy.actions import CaseKind
from portal.policy.appeals import ROUTE_LABELS
from portal.policy.permissions import referable, why_cannot_share
from portal.services import appeal_review
from portal.services.case_actions import CaseActionError
from portal.services.inbox import time_left
from portal.staff import bp
from portal.staff.cases import _case_or_404
from portal.staff.forms import AppealOutcomeForm, ReferAppealForm, ShareWithReviewersForm


def _to_review(case: Case) -> Response:
    return redirect(url_for("staff.appeal", case_id=case.id), code=303)


def _act_on_appeal(
    case_id: int, form_class: type, apply: Callable[[Case, Any], str | None]
) -> Response:
    """Validate, apply one service call, commit, and come back to the review page."""
    case = _case_or_404(case_id)
    form = form_class()
    if not form.validate_on_submit():
        for field_errors in form.errors.values():
            for error in field_errors:
                flash(error, "error")
        return _to_review(case)
    try:
        message = apply(case, form)
    except CaseActionError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _to_review(case)
    db.session.commit()
    flash(message or "Saved.", "success")
    return _to_review(case)


@bp.context_processor
def appeal_helpers() -> dict[str, Any]:
    """For the case page's Appeals section (templates/staff/case.html)."""

    def panel(case: Case) -> appeal_review.AppealsPanel:
        return appeal_review.appeals_panel(db.session, current_user, case)

    def may_share(case: Case) -> bool:
        return why_cannot_share(roles=current_user.roles, team=case.team) is None

    return {"appeals_panel": panel, "may_share_with_reviewers": may_share}


@bp.get("/appeals/<int:case_id>")
def appeal(case_id: int) -> str | Response:
    case = _case_or_404(case_id)
    if case.kind != CaseKind.APPEAL:
        return redirect(url_for("staff.case", case_id=case.id), code=303)
    page = appeal_review.review_page(db.session, current_user, case)
    return render_template(
        "staff/appeal.html",
        page=page,
        case=case,
        clock=time_left(case, utcnow()),
        outcome_form=AppealOutcomeForm(),
        refer_form=ReferAppealForm(),
        route_labels=ROUTE_LABELS,
        may_refer=page.appeal is not None and referable(page.appeal.state, page.appeal.route),
    )


@bp.post("/appeals/<int:case_id>/outcome")
def appeal_outcome(case_id: int) -> Response:
    def apply(case: Case, form: AppealOutcomeForm) -> str:
        appeal_review.record_outcome(
            db.session,
            get_settings(),
            current_app.secret_key,
            staff=current_user,
            appeal_case=case,
            outcome=form.outcome.data or "",
            reasons=form.reasons.data or "",
        )
        return "Outcome recorded; the outcome and its reasons are queued for the appellant."

    return _act_on_appeal(case_id, AppealOutcomeForm, apply)


@bp.post("/appeals/<int:case_id>/refer")
def appeal_refer(case_id: int) -> Response:
    def apply(case: Case, form: ReferAppealForm) -> str:
        appeal_review.refer_to_committee(db.session, staff=current_user, appeal_case=case)
        return "Referred to the case review committee."

    return _act_on_appeal(case_id, ReferAppealForm, apply)


@bp.post("/cases/<int:case_id>/share-with-reviewers")
def share_with_reviewers(case_id: int) -> Response:
    case = _case_or_404(case_id)
    form = ShareWithReviewersForm()
    if form.validate_on_submit():
        try:
            appeal_review.share_with_reviewers(
                db.session, staff=current_user, case=case, shared=bool(form.shared.data)
            )
        except CaseActionError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash("Saved.", "success")
    return redirect(url_for("staff.case", case_id=case.id) + "#appeals", code=303)
