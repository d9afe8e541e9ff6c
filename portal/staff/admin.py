"""Admin pages: canned responses."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from portal.extensions import db
from portal.models import CannedResponse
from portal.policy.permissions import CANNED_RESPONSE_ROLES
from portal.services import audit
from portal.staff import bp
from portal.staff.decorators import role_required
from portal.staff.forms import CannedResponseForm


@bp.get("/admin/canned")
@role_required(*CANNED_RESPONSE_ROLES)
def canned_list() -> str:
    responses = db.session.scalars(select(CannedResponse).order_by(CannedResponse.title)).all()
    return render_template("staff/canned_list.html", responses=responses, form=CannedResponseForm())


@bp.route("/admin/canned/new", methods=["POST"])
@bp.route("/admin/canned/<int:canned_id>", methods=["GET", "POST"])
@role_required(*CANNED_RESPONSE_ROLES)
def canned_edit(canned_id: int | None = None) -> str | Response | tuple[str, int]:
    item = db.session.get(CannedResponse, canned_id) if canned_id else CannedResponse()
    if item is None:
        abort(404)
    form = CannedResponseForm(obj=item if canned_id else None)
    if not form.validate_on_submit():
        status = 400 if form.is_submitted() else 200
        return render_template("staff/canned_edit.html", form=form, item=item), status
    duplicate = db.session.scalar(
        select(CannedResponse).where(
            CannedResponse.title == form.title.data, CannedResponse.id != item.id
        )
    )
    if duplicate is not None:
        form.title.errors.append("Another canned response has this title.")
        return render_template("staff/canned_edit.html", form=form, item=item), 400
    item.title = form.title.data or ""
    item.body = form.body.data or ""
    item.team = form.team.data or None
    db.session.add(item)
    db.session.flush()
    audit.record(
        db.session,
        actor=audit.staff_actor(current_user),
        action="canned.saved",
        details={"canned_id": item.id},
    )
    db.session.commit()
    flash("Canned response saved.", "success")
    return redirect(url_for("staff.canned_list"), code=303)


@bp.post("/admin/canned/<int:canned_id>/delete")
@role_required(*CANNED_RESPONSE_ROLES)
def canned_delete(canned_id: int) -> Response:
    item = db.session.get(CannedResponse, canned_id)
    if item is None:
        abort(404)
    db.session.delete(item)
    audit.record(
        db.session,
        actor=audit.staff_actor(current_user),
        action="canned.deleted",
        details={"canned_id": canned_id},
    )
    db.session.commit()
    flash("Canned response deleted.", "success")
    return redirect(url_for("staff.canned_list"), code=303)
