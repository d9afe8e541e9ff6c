"""Public views: thin. Parse the form, call a service, commit, send mail, render."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from portal.config import get_settings
from portal.errors import keep_input_on_csrf_error
from portal.extensions import db, limiter
from portal.policy import RULES
from portal.public import bp
from portal.public.forms import RequestForm
from portal.services import acks, outbound
from portal.services.cases import open_request, render_submission_text


def _request_rate_limit() -> str:
    return get_settings().request_rate_limit


def render_request_form(form: RequestForm, status: int = 200) -> tuple[str, int]:
    return render_template("public/request_form.html", form=form, rules=RULES), status


@bp.get("/")
def index() -> str:
    return render_template("public/index.html")


@bp.route("/requests/new", methods=["GET", "POST"])
@limiter.limit(
    _request_rate_limit,
    methods=["POST"],
    # Only a filed request counts: someone correcting their errors is never locked out.
    deduct_when=lambda response: response.status_code == 303,
)
@keep_input_on_csrf_error(lambda form_data: render_request_form(RequestForm(formdata=form_data)))
def new_request() -> tuple[str, int] | Response:
    form = RequestForm()
    if not form.is_submitted() and request.args.get("action") in RULES:
        form.action.data = request.args["action"]  # e.g. the home page's child protection link
    if not form.validate_on_submit():
        return render_request_form(form, 400 if form.is_submitted() else 200)

    settings = get_settings()
    submission = form.to_submission()
    case = open_request(db.session, submission)
    ack = acks.acknowledge_request(
        db.session,
        settings,
        current_app.secret_key,
        case=case,
        to=submission.requester_email,
        submission_text=render_submission_text(submission),
    )
    db.session.commit()
    if ack is not None:
        outbound.deliver_due(db.session, settings, only=[ack.id])

    # The reference is shown from the session, never from the URL: a guessable
    # /requests/OA-... page would confirm to anyone that a case exists.
    session["submitted_reference"] = case.reference
    session["submitted_ack"] = ack is not None
    return redirect(url_for("public.request_submitted"), code=303)


@bp.get("/requests/submitted")
def request_submitted() -> str | Response:
    reference = session.get("submitted_reference")
    if not reference:
        return redirect(url_for("public.new_request"))
    return render_template(
        "public/request_submitted.html",
        reference=reference,
        ack_sent=session.get("submitted_ack", False),
    )
