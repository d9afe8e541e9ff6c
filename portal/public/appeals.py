"""The public appeal form and its confirmation link. Thin: parse, call a service, commit.

Every valid filing gets the same answer, whether or not it matches a case: a 303 to the same
page, sent before the filing is even looked at. The filing is stored as a job that the
delivery worker runs (``portal.services.appeals.queue_filing``), so neither the bytes nor the
time taken tell a visitor whether a case exists or who its parties are.
"""

from __future__ import annotations

import logging

from flask import current_app, redirect, render_template, request, session, url_for
from flask_limiter.util import get_remote_address
from werkzeug.wrappers import Response

from portal.addresses import canonical_address
from portal.config import get_settings
from portal.errors import keep_input_on_csrf_error
from portal.extensions import db, limiter
from portal.models import Case
from portal.models.base import utcnow
from portal.public import bp
from portal.public.appeal_forms import (
    ATTACHMENT_MAX_BYTES,
    ATTACHMENTS_MAX,
    AppealForm,
    ConfirmAppealForm,
)
from portal.public.views import refuse_locked_out
from portal.services import abuse
from portal.services.appeal_checks import Confirmed, pending_appeal_for
from portal.services.appeals import Confirmation, confirm_appeal, queue_filing

log = logging.getLogger(__name__)

# One budget per IP for every appeal page a visitor can load: the form, the neutral answer and
# confirmation links (which are signed, so guessing them is hopeless anyway).
PAGES_SCOPE = "appeal-pages"
_LINK_STATUS = {Confirmed.INVALID: 404, Confirmed.EXPIRED: 410, Confirmed.USED: 410}


def _filing_limit() -> str:
    return str(current_app.config["APPEAL_RATE_LIMIT"])


def _address_limit() -> str:
    return str(current_app.config["APPEAL_ADDRESS_RATE_LIMIT"])


def _page_limit() -> str:
    return str(current_app.config["APPEAL_PAGE_RATE_LIMIT"])


def _appellant_address() -> str:
    """Limit key per appellant address (canonical, so variants share it), else per IP."""
    typed = request.form.get("appellant_email", "").strip()
    return f"appeal-address:{canonical_address(typed)}" if typed else get_remote_address()


def _filed(response: Response) -> bool:
    # Only a filing counts: someone correcting the form's errors is never locked out.
    return response.status_code == 303


def render_appeal_form(form: AppealForm, status: int = 200) -> tuple[str, int]:
    limits = {"files": ATTACHMENTS_MAX, "megabytes": ATTACHMENT_MAX_BYTES // (1024 * 1024)}
    return render_template("public/appeal_form.html", form=form, limits=limits), status


@bp.route("/appeals/new", methods=["GET", "POST"])
@limiter.shared_limit(_page_limit, scope=PAGES_SCOPE, methods=["GET"])
@limiter.limit(_filing_limit, methods=["POST"], deduct_when=_filed)
@limiter.limit(_address_limit, methods=["POST"], key_func=_appellant_address, deduct_when=_filed)
@keep_input_on_csrf_error(lambda form_data: render_appeal_form(AppealForm(formdata=form_data)))
def new_appeal() -> tuple[str, int] | Response:
    form = AppealForm()
    if not form.validate_on_submit():
        return render_appeal_form(form, 400 if form.is_submitted() else 200)
    # A lockout is about the address, not the case: refusing it reveals nothing about cases.
    lockout = abuse.active_lockout(db.session, form.appellant_email.data or "")
    if lockout is not None:
        return refuse_locked_out(lockout, channel="appeal_form")
    # Nothing about the case is looked up here: the filing is stored as a job and checked,
    # recorded and answered by mail by the delivery worker, so every filing takes the same
    # time here, and a worker killed right after answering loses nothing.
    queue_filing(db.session, get_settings(), form.to_filing())
    db.session.commit()
    return redirect(url_for("public.appeal_sent"), code=303)


@bp.get("/appeals/sent")
@limiter.shared_limit(_page_limit, scope=PAGES_SCOPE)
def appeal_sent() -> str:
    """The same page for everyone who filed, matched or not."""
    return render_template("public/appeal_sent.html")


def _link_problem(status: Confirmed) -> tuple[str, int]:
    """Expired, used, or not ours: a calm page, and nothing about any case."""
    return render_template("public/appeal_link.html", status=status.value), _LINK_STATUS[status]


@bp.route("/appeals/confirm/<token>", methods=["GET", "POST"])
@limiter.shared_limit(_page_limit, scope=PAGES_SCOPE)
def confirm_appeal_link(token: str) -> tuple[str, int] | Response:
    settings = get_settings()
    form = ConfirmAppealForm()
    if request.method == "GET" or not form.validate_on_submit():
        found = pending_appeal_for(
            db.session, settings, current_app.secret_key, token, now=utcnow()
        )
        if isinstance(found, Confirmed):
            return _link_problem(found)
        case = db.session.get(Case, found.case_id)
        page = render_template(
            "public/appeal_link.html", form=form, appeal=found, reference=case and case.reference
        )
        return page, 200 if request.method == "GET" else 400
    result = confirm_appeal(db.session, settings, current_app.secret_key, token)
    db.session.commit()
    if result.status in _LINK_STATUS:
        return _link_problem(result.status)
    session["appeal_confirmation"] = _confirmation_summary(result)
    return redirect(url_for("public.appeal_confirmed"), code=303)


def _confirmation_summary(result: Confirmation) -> dict[str, str | None]:
    return {
        "status": result.status.value,
        "reference": result.reference,
        "message": result.message,
        "due": result.due_at.strftime("%-d %B %Y") if result.due_at else None,
    }


@bp.get("/appeals/confirmed")
def appeal_confirmed() -> str | Response:
    summary = session.get("appeal_confirmation")
    if not summary:
        return redirect(url_for("public.new_appeal"))
    return render_template("public/appeal_confirmed.html", summary=summary)
