"""Unfiled mail at /staff/unfiled: what the bridge kept but could not file, never lost to view.

Access by ``portal.access.unfiled_visibility``: the staff of the queue the message's mailbox
feeds. A message someone may not read answers like one that does not exist.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, send_file, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal.access import visible_mailboxes
from portal.config import get_settings
from portal.extensions import db
from portal.models import Message
from portal.services import unfiled
from portal.services.unfiled import UnfiledError
from portal.staff import bp
from portal.storage import BlobStore


def _unfiled_or_404(message_id: int) -> Message:
    message = unfiled.get_unfiled(db.session, current_user, message_id)
    if message is None:
        abort(404)
    return message


@bp.get("/unfiled")
def unfiled_view() -> str:
    if not visible_mailboxes(current_user):
        abort(403)  # no queue fed by a mailbox: there is nothing here for this role
    return render_template("staff/unfiled.html", messages=unfiled.unfiled(db.session, current_user))


@bp.get("/unfiled/<int:message_id>/raw")
def unfiled_raw(message_id: int) -> Response:
    """The message byte for byte, as it arrived: only ever downloaded, never shown inline."""
    message = _unfiled_or_404(message_id)
    if not message.raw_sha256:
        abort(404)
    path = BlobStore(get_settings().blob_dir).path_for(message.raw_sha256)
    if not path.exists():
        abort(404)
    response = send_file(
        path,
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=f"message-{message.id}.eml",
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


@bp.post("/unfiled/<int:message_id>/file")
def file_unfiled(message_id: int) -> Response:
    message = _unfiled_or_404(message_id)
    try:
        case_id = unfiled.file_as_inquiry(db.session, current_user, message)
    except UnfiledError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("staff.unfiled_view"), code=303)
    db.session.commit()
    flash("Filed as a new inquiry.", "success")
    return redirect(url_for("staff.case", case_id=case_id), code=303)
