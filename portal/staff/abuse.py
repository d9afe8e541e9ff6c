"""Abuse marks, warnings, lockouts and the quarantine view. Trust & Safety and admins only."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from portal.access import get_visible_case, get_visible_reporter, visible_cases
from portal.config import get_settings
from portal.extensions import db
from portal.models import AbuseMark, AbuseWarning, Case, Lockout, Message, Reporter
from portal.models.base import utcnow
from portal.policy.abuse import Step
from portal.policy.permissions import ABUSE_ROLES
from portal.services import abuse, quarantine
from portal.services.abuse import AbuseError
from portal.staff import bp
from portal.staff.decorators import role_required
from portal.staff.forms import AbuseMarkForm, LiftForm, LockoutForm, WarningForm


def _reporter_or_404(reporter_id: int) -> Reporter:
    """Only a person one of whose cases the user may see (portal.access): anyone else is a 404,
    like someone who does not exist."""
    reporter = get_visible_reporter(db.session, current_user, reporter_id)
    if reporter is None:
        abort(404)
    return reporter


def _to_reporter(reporter_id: int) -> Response:
    return redirect(url_for("staff.reporter", reporter_id=reporter_id), code=303)


@bp.post("/cases/<int:case_id>/abuse")
@role_required(*ABUSE_ROLES)
def mark_abuse(case_id: int) -> Response:
    case = get_visible_case(db.session, current_user, case_id)
    if case is None:
        abort(404)
    form = AbuseMarkForm()
    if not form.validate_on_submit():
        flash("Choose a category, seriousness and intent, and write a note.", "error")
        return redirect(url_for("staff.case", case_id=case.id), code=303)
    message_id = int(form.message_id.data) if (form.message_id.data or "").isdigit() else None
    try:
        mark, step = abuse.mark_abuse(
            db.session,
            current_user,
            case=case,
            category=form.category.data,
            seriousness=form.seriousness.data,
            intent=form.intent.data,
            note=form.note.data or "",
            message_id=message_id,
        )
    except AbuseError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("staff.case", case_id=case.id), code=303)
    db.session.commit()
    flash(f"Marked abusive. The rules now propose a {step.kind}.", "success")
    return _to_reporter(mark.reporter_id)


@bp.get("/reporters/<int:reporter_id>")
@role_required(*ABUSE_ROLES)
def reporter(reporter_id: int) -> str:
    reporter = _reporter_or_404(reporter_id)
    now = utcnow()
    cases = db.session.scalars(
        visible_cases(current_user).where(Case.requester_id == reporter.id).order_by(Case.id.desc())
    ).all()
    marks = db.session.scalars(
        select(AbuseMark).where(AbuseMark.reporter_id == reporter.id).order_by(AbuseMark.id.desc())
    ).all()
    warnings = db.session.scalars(
        select(AbuseWarning)
        .where(AbuseWarning.reporter_id == reporter.id)
        .order_by(AbuseWarning.id.desc())
    ).all()
    lockouts = db.session.scalars(
        select(Lockout).where(Lockout.reporter_id == reporter.id).order_by(Lockout.id.desc())
    ).all()
    step = None
    warning_form = lockout_form = None
    if marks:
        try:
            step = abuse.next_step(db.session, reporter, now)
        except AbuseError:
            step = None  # warned, and no mark since: nothing to propose
    if step is not None and step.kind is Step.WARNING:
        policy_url = url_for("public.abuse_policy", _external=True)
        warning_form = WarningForm(
            text=abuse.warning_text(reporter, marks[0], policy_url), mark_id=str(marks[0].id)
        )
    elif step is not None:
        lockout_form = LockoutForm()
    return render_template(
        "staff/reporter.html",
        reporter=reporter,
        cases=cases,
        marks=marks,
        warnings=warnings,
        lockouts=lockouts,
        in_force=[lockout for lockout in lockouts if lockout.active_at(now)],
        step=step,
        warning_form=warning_form,
        lockout_form=lockout_form,
        lift_form=LiftForm(),
        now=now,
    )


@bp.post("/reporters/<int:reporter_id>/warning")
@role_required(*ABUSE_ROLES)
def send_warning(reporter_id: int) -> Response:
    reporter = _reporter_or_404(reporter_id)
    form = WarningForm()
    mark = (
        db.session.get(AbuseMark, int(form.mark_id.data))
        if (form.mark_id.data or "").isdigit()
        else None
    )
    if not form.validate_on_submit() or mark is None or mark.reporter_id != reporter.id:
        flash("The warning needs its text.", "error")
        return _to_reporter(reporter.id)
    settings = get_settings()
    try:
        abuse.send_warning(
            db.session,
            settings,
            current_app.secret_key,
            current_user,
            reporter=reporter,
            mark=mark,
            text=form.text.data or "",
        )
    except AbuseError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _to_reporter(reporter.id)
    db.session.commit()
    flash("Warning saved and queued for sending.", "success")
    return _to_reporter(reporter.id)


@bp.post("/reporters/<int:reporter_id>/lockout")
@role_required(*ABUSE_ROLES)
def confirm_lockout(reporter_id: int) -> Response:
    reporter = _reporter_or_404(reporter_id)
    form = LockoutForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(error, "error")
        return _to_reporter(reporter.id)
    days = int(form.override_days.data) if (form.override_days.data or "").strip() else None
    try:
        lockout = abuse.confirm_lockout(
            db.session,
            current_user,
            reporter=reporter,
            override_days=days,
            override_reason=form.override_reason.data,
        )
    except AbuseError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _to_reporter(reporter.id)
    db.session.commit()
    flash(f"Locked out until {lockout.ends_at:%Y-%m-%d}.", "success")
    return _to_reporter(reporter.id)


@bp.post("/lockouts/<int:lockout_id>/lift")
@role_required(*ABUSE_ROLES)
def lift_lockout(lockout_id: int) -> Response:
    lockout = db.session.get(Lockout, lockout_id)
    if lockout is None:
        abort(404)
    _reporter_or_404(lockout.reporter_id)
    form = LiftForm()
    if not form.validate_on_submit():
        flash("Give a reason for lifting the lockout early.", "error")
        return _to_reporter(lockout.reporter_id)
    try:
        abuse.lift_lockout(db.session, current_user, lockout, reason=form.reason.data or "")
    except AbuseError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _to_reporter(lockout.reporter_id)
    db.session.commit()
    flash("Lockout lifted.", "success")
    return _to_reporter(lockout.reporter_id)


@bp.get("/quarantine")
@role_required(*ABUSE_ROLES)
def quarantine_view() -> str:
    return render_template(
        "staff/quarantine.html", messages=quarantine.quarantined(db.session, current_user)
    )


@bp.post("/quarantine/<int:message_id>/release")
@role_required(*ABUSE_ROLES)
def release(message_id: int) -> Response:
    message = db.session.get(Message, message_id)
    if message is None or not message.quarantined:
        abort(404)
    if (
        message.case_id is not None
        and get_visible_case(db.session, current_user, message.case_id) is None
    ):
        abort(404)
    case_id = quarantine.release(db.session, current_user, message)
    db.session.commit()
    flash("Released into the queue.", "success")
    return redirect(url_for("staff.case", case_id=case_id), code=303)
