"""Public views: thin. Parse the form, call a service, commit, render. Mail is only queued."""

from __future__ import annotations

import logging

from flask import current_app, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from portal.config import get_settings
from portal.errors import keep_input_on_csrf_error
from portal.extensions import db, limiter
from portal.models import Case, Lockout
from portal.policy.abuse import (
    LOCKOUT_EXAMPLES,
    LockoutProposal,
    open_during_lockout,
    propose_lockout_days,
)
from portal.policy.actions import RULES, SUMMARY_MAX_WORDS
from portal.public import bp
from portal.public.forms import RequestForm
from portal.services import abuse, acks, audit
from portal.services.cases import open_request, render_submission_text

log = logging.getLogger(__name__)


def _request_rate_limit() -> str:
    return get_settings().request_rate_limit


def render_request_form(form: RequestForm, status: int = 200) -> tuple[str, int]:
    return render_template(
        "public/request_form.html", form=form, rules=RULES, summary_max_words=SUMMARY_MAX_WORDS
    ), status


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
    screening = abuse.screen(db.session, submission.requester_email)
    lockout = db.session.get(Lockout, screening.lockout_id) if screening.lockout_id else None
    if lockout is not None and not open_during_lockout(submission.action):
        return refuse_locked_out(lockout, channel="request_form")
    case = open_request(db.session, submission)
    if lockout is not None:
        # The law keeps this channel open: the report goes in, urgent, and staff see why.
        note_locked_out_report(case, lockout)
    if screening.lookalike:
        flag_first_message(case, f"The requester's address: {screening.lookalike}.")
    ack = acks.acknowledge_request(
        db.session,
        settings,
        current_app.secret_key,
        case=case,
        to=submission.requester_email,
        submission_text=render_submission_text(submission),
    )
    db.session.commit()  # the delivery worker sends the acknowledgement

    # The reference is shown from the session, never from the URL: a guessable
    # /requests/OA-... page would confirm to anyone that a case exists.
    session["submitted_reference"] = case.reference
    session["submitted_ack"] = ack is not None
    return redirect(url_for("public.request_submitted"), code=303)


def refuse_locked_out(lockout: Lockout, *, channel: str) -> tuple[str, int]:
    """The calm refusal: the end date and nothing else. The attempt is recorded."""
    audit.record(
        db.session,
        actor="public",
        action="lockout.refused",
        details={"lockout_id": lockout.id, "reporter_id": lockout.reporter_id, "channel": channel},
    )
    db.session.commit()
    return render_template("public/locked_out.html", lockout=lockout), 403


def note_locked_out_report(case: Case, lockout: Lockout) -> None:
    first = case.messages[0]
    first.urgent = True
    flag_first_message(
        case,
        f"The reporter is locked out until {lockout.ends_at:%Y-%m-%d}; child protection "
        "reports are accepted all the same.",
    )


def flag_first_message(case: Case, reason: str) -> None:
    """Raise the submission to staff, adding ``reason`` to any flag it has."""
    first = case.messages[0]
    first.flag_reason = "; ".join(filter(None, [first.flag_reason, reason]))


@bp.get("/policy/abuse")
def abuse_policy() -> str:
    return render_template("public/abuse_policy.html", examples=abuse_policy_examples())


def abuse_policy_examples() -> list[tuple[str, LockoutProposal]]:
    """Worked examples computed by the rule itself, so the page can never drift from it."""
    return [(text, propose_lockout_days(factors)) for text, factors in LOCKOUT_EXAMPLES]


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
