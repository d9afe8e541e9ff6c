"""The case page and everything staff do on it. Every case is loaded through portal.access."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from portal.access import get_visible_case, visible_cases
from portal.config import get_settings
from portal.extensions import db
from portal.forms import options
from portal.models import AuditEvent, Case, Message, OutboundMail, StaffUser
from portal.models.base import utcnow
from portal.policy.permissions import may_handle_abuse
from portal.services import case_actions, replies
from portal.services.case_actions import CaseActionError
from portal.services.inbox import time_left
from portal.services.outbound import HeaderInjectionError
from portal.staff import bp
from portal.staff.forms import (
    AbuseMarkForm,
    AssignForm,
    ClassifyForm,
    DecisionForm,
    ModificationForm,
    NoteForm,
    PartyForm,
    ReplyForm,
    StatusForm,
)


def _case_or_404(case_id: int) -> Case:
    case = get_visible_case(db.session, current_user, case_id)
    if case is None:
        abort(404)
    return case


def _back(case: Case, anchor: str = "") -> Response:
    return redirect(url_for("staff.case", case_id=case.id) + anchor, code=303)


def _active_staff() -> list[StaffUser]:
    return list(
        db.session.scalars(
            select(StaffUser).where(StaffUser.active.is_(True)).order_by(StaffUser.email)
        )
    )


@bp.get("/cases/<int:case_id>")
def case(case_id: int) -> str:
    case = _case_or_404(case_id)
    now = utcnow()
    deliveries = {
        row.timeline_message_id: row
        for row in db.session.scalars(select(OutboundMail).where(OutboundMail.case_id == case.id))
    }
    other_cases = (
        db.session.scalars(
            visible_cases(current_user)
            .where(Case.requester_id == case.requester_id, Case.id != case.id)
            .order_by(Case.id.desc())
            .limit(20)
        ).all()
        if case.requester_id
        else []
    )
    audit_trail = db.session.scalars(
        select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.id)
    ).all()
    staff = _active_staff()
    assign_form = AssignForm(assignee=str(case.assignee_id or ""))
    assign_form.assignee.choices = options(
        [("", "nobody")] + [(str(s.id), s.display_name) for s in staff]
    )
    window = timedelta(minutes=current_app.config["REPLY_PRESENCE_MINUTES"])
    return render_template(
        "staff/case.html",
        case=case,
        clock=time_left(case, now),
        deliveries=deliveries,
        other_cases=other_cases,
        audit_trail=audit_trail,
        staff_by_id={s.id: s for s in staff},
        others_replying=replies.others_replying(db.session, current_user, case, window, now),
        note_form=NoteForm(),
        assign_form=assign_form,
        status_form=StatusForm(status=case.status),
        classify_form=ClassifyForm(
            action=case.action or "", team=case.team, confidential=case.confidential
        ),
        party_form=PartyForm(),
        decision_form=DecisionForm(),
        abuse_form=AbuseMarkForm()
        if case.requester_id and may_handle_abuse(current_user.roles)
        else None,
        modification_form=ModificationForm(),
    )


@bp.route("/cases/<int:case_id>/reply", methods=["GET", "POST"])
def reply(case_id: int) -> str | Response | tuple[str, int]:
    case = _case_or_404(case_id)
    form = ReplyForm()
    canned = replies.canned_for(db.session, case)
    form.canned.choices = options([("", "none")] + [(str(c.id), c.title) for c in canned])
    answered_id = request.values.get("to") or form.in_reply_to.data
    answered = (
        db.session.get(Message, int(answered_id)) if answered_id and answered_id.isdigit() else None
    )
    if answered is not None and answered.case_id != case.id:
        abort(404)
    values = {"reference": case.reference or "", "requester_name": case.requester_name or ""}

    if request.method == "GET":
        replies.note_reply_opened(db.session, current_user, case)
        db.session.commit()
        chosen = next((c for c in canned if str(c.id) == request.args.get("canned")), None)
        if chosen is not None:
            form.body.data = replies.fill_placeholders(chosen.body, values)
            form.canned.data = str(chosen.id)
        form.in_reply_to.data = str(answered.id) if answered else ""
        return _render_reply(case, form, answered)

    if not form.validate_on_submit():
        return _render_reply(case, form, answered), 400
    settings = get_settings()
    try:
        sent = replies.send_reply(
            db.session,
            settings,
            current_app.secret_key,
            staff=current_user,
            case=case,
            body=form.body.data or "",
            answered=answered,
        )
    except (HeaderInjectionError, replies.ReplyError) as exc:
        db.session.rollback()
        form.form_errors.append(str(exc))
        return _render_reply(case, form, answered), 400
    db.session.commit()
    flash(
        "Reply saved and queued: it goes out within moments (its state is shown below).", "success"
    )
    return _back(case, f"#message-{sent.timeline_message_id}")


def _render_reply(case: Case, form: ReplyForm, answered: Message | None) -> str:
    window = timedelta(minutes=current_app.config["REPLY_PRESENCE_MINUTES"])
    return render_template(
        "staff/reply.html",
        case=case,
        form=form,
        answered=answered,
        recipient=_recipient_or_none(case, answered),
        others_replying=replies.others_replying(db.session, current_user, case, window),
    )


def _recipient_or_none(case: Case, answered: Message | None) -> str | None:
    try:
        return replies.reply_recipient(case, answered)
    except replies.ReplyError:
        return None


def _act(
    case_id: int, form_class: type, apply: Callable[[Case, object], None], anchor: str
) -> Response:
    """Validate a sidebar form, apply one service call, commit, and come back to the case."""
    case = _case_or_404(case_id)
    form = form_class()
    if not form.validate_on_submit():
        for field_errors in form.errors.values():
            for error in field_errors:
                flash(error, "error")
        return _back(case, anchor)
    try:
        apply(case, form)
    except CaseActionError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back(case, anchor)
    db.session.commit()
    flash("Saved.", "success")
    return _back(case, anchor)


@bp.post("/cases/<int:case_id>/note")
def add_note(case_id: int) -> Response:
    return _act(
        case_id,
        NoteForm,
        lambda case, form: case_actions.add_note(db.session, current_user, case, form.body.data),
        "#timeline-end",
    )


@bp.post("/cases/<int:case_id>/assign")
def assign(case_id: int) -> Response:
    def apply(case: Case, form: AssignForm) -> None:
        chosen = form.assignee.data or ""
        assignee = db.session.get(StaffUser, int(chosen)) if chosen.isdigit() else None
        if chosen and assignee is None:
            raise CaseActionError("No such staff account.")
        case_actions.assign(db.session, current_user, case, assignee)

    return _act(case_id, AssignForm, apply, "#actions")


@bp.post("/cases/<int:case_id>/status")
def change_status(case_id: int) -> Response:
    return _act(
        case_id,
        StatusForm,
        lambda case, form: case_actions.change_status(
            db.session, current_user, case, form.status.data
        ),
        "#actions",
    )


@bp.post("/cases/<int:case_id>/classify")
def classify(case_id: int) -> Response:
    return _act(
        case_id,
        ClassifyForm,
        lambda case, form: case_actions.classify(
            db.session,
            current_user,
            case,
            action=form.action.data or None,
            team=form.team.data,
            confidential=bool(form.confidential.data),
        ),
        "#actions",
    )


@bp.post("/cases/<int:case_id>/party")
def add_party(case_id: int) -> Response:
    return _act(
        case_id,
        PartyForm,
        lambda case, form: case_actions.add_party(
            db.session, current_user, case, address=form.address.data, role=form.role.data
        ),
        "#parties",
    )


@bp.post("/cases/<int:case_id>/decision")
def decide(case_id: int) -> Response:
    return _act(
        case_id,
        DecisionForm,
        lambda case, form: case_actions.record_decision(
            db.session,
            current_user,
            case,
            decision=form.decision.data,
            details=form.details.data,
            scope_location=form.scope_location.data or None,
            scope_project=form.scope_project.data or None,
            scope_until=form.scope_until.data,
            part_of_global_ban=bool(form.part_of_global_ban.data),
            irrevocable=bool(form.irrevocable.data),
        ),
        "#decision",
    )


@bp.post("/cases/<int:case_id>/modification")
def modify_decision(case_id: int) -> Response:
    return _act(
        case_id,
        ModificationForm,
        lambda case, form: case_actions.record_modification(
            db.session,
            current_user,
            case,
            details=form.details.data,
            substantial=bool(form.substantial.data),
        ),
        "#decision",
    )
