"""The staff side. Every route needs a signed-in, active staff member with at least one role;
the check runs before any view, so a new route is protected without remembering to."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user
from markupsafe import Markup
from werkzeug.wrappers import Response

from portal.access import visible_mailboxes
from portal.display import BODY_DISPLAY_LABEL, body_to_show
from portal.policy.permissions import may_handle_abuse, may_manage_canned_responses
from portal.sanitize import sanitize_html
from portal.signin import SessionEnd

bp = Blueprint("staff", __name__, url_prefix="/staff")

# The only staff endpoints reachable without a session.
PUBLIC_ENDPOINTS = frozenset({"staff.login"})


@bp.before_request
def require_login() -> Response | None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated or not current_user.is_active or not current_user.roles:
        if "_user_id" in session:
            # A session that was signed in and is no longer accepted: drop all of it (CSRF
            # token included) and say why, rather than a bare "please sign in".
            ended: SessionEnd = g.get("staff_session_end", SessionEnd.ENDED)
            session.clear()
            flash(ended.value, "info")
        else:
            flash("Please sign in to continue.", "info")
        return redirect(
            url_for("staff.login", next=request.full_path if request.method == "GET" else None)
        )
    return None


@bp.errorhandler(403)
def forbidden(error: Exception) -> tuple[str, int]:
    """A staff member refused by role stays in the staff pages, with a way back."""
    return render_template("staff/403.html"), 403


@bp.app_template_filter("sanitized")
def sanitized(markup: str | None) -> Markup:
    """Stored mail HTML was sanitized on the way in; sanitize again on the way out, so a
    policy change or a row written by older code can never reach a staff browser raw."""
    return Markup(sanitize_html(markup or ""))  # noqa: S704  (nh3 output is safe to embed)


# The case and appeal pages show a body through these (templates/staff/_message.html).
bp.add_app_template_global(body_to_show)
bp.add_app_template_global(BODY_DISPLAY_LABEL, "BODY_DISPLAY_LABEL")
# What the navigation and the case page offer follows the rules the views enforce.
bp.add_app_template_global(may_handle_abuse)
bp.add_app_template_global(may_manage_canned_responses)


@bp.context_processor
def navigation() -> dict[str, Any]:
    """What the staff navigation offers: the unfiled list to the staff of a mailbox's queue."""
    signed_in = current_user.is_authenticated
    return {"unfiled_mailboxes": visible_mailboxes(current_user) if signed_in else []}


@bp.after_request
def no_store(response: Response) -> Response:
    """Case pages hold confidential material: never keep them in a shared browser cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


from portal.staff import (  # noqa: E402,F401  (routes register on import)
    abuse,
    admin,
    appeals,
    auth,
    cases,
    downloads,
    inbox,
    unfiled,
)
