"""Signing in and out, and changing one's own password.

Flask's session is a signed cookie the browser keeps: a copy saved before signing out would
still be valid on its own. So the session also carries the account's session version and two
times (signed in, last seen), and the user loader checks them against the database on every
request (rules in :mod:`portal.signin`): signing out, disabling the account, a password change
or a 2FA reset move the version on and end every session of the account at once.
"""

from __future__ import annotations

import math

from flask import flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from portal.config import get_settings
from portal.extensions import db, login_manager
from portal.models import StaffUser
from portal.models.base import utcnow
from portal.services.staff import (
    LoginRefused,
    LoginThrottled,
    StaffError,
    authenticate,
    change_own_password,
    sign_out,
)
from portal.signin import session_end
from portal.staff import bp
from portal.staff.forms import LoginForm, PasswordChangeForm

# Our keys in the session, beside Flask-Login's own.
VERSION, SIGNED_IN, LAST_SEEN = "staff_session_version", "staff_signed_in", "staff_last_seen"


@login_manager.user_loader
def load_user(user_id: str) -> StaffUser | None:
    user = db.session.get(StaffUser, int(user_id)) if user_id.isdigit() else None
    if user is None or not user.active:
        return None
    settings, now = get_settings(), utcnow()
    ended = session_end(
        session_version=session.get(VERSION),
        account_version=user.session_version,
        signed_in_at=session.get(SIGNED_IN),
        last_seen_at=session.get(LAST_SEEN),
        now=now,
        idle=settings.staff_idle,
        lifetime=settings.staff_session,
    )
    if ended is not None:
        g.staff_session_end = ended  # the login check says why, once it has cleared the session
        return None
    session[LAST_SEEN] = now.timestamp()
    return user


def _me() -> StaffUser:
    """The signed-in staff member itself, not Flask-Login's proxy (services refresh it)."""
    user: StaffUser = current_user._get_current_object()  # type: ignore[attr-defined]
    return user


def _start_session(user: StaffUser) -> None:
    session.clear()  # a fresh session: nothing from before sign-in carries over
    session.permanent = True
    login_user(user)
    now = utcnow().timestamp()
    session.update({VERSION: user.session_version, SIGNED_IN: now, LAST_SEEN: now})


def _safe_next(target: str | None) -> str:
    """Only ever go back to one of our own staff pages after signing in."""
    if target and target.startswith("/staff/") and not target.startswith("//"):
        return target
    return url_for("staff.inbox")


def _throttled(
    template: str, form: LoginForm | PasswordChangeForm, exc: LoginThrottled
) -> Response:
    """The 429 page: the form again (with what was typed), saying how long to wait."""
    seconds = math.ceil(exc.retry_after.total_seconds())
    if seconds < 120:
        wait = "1 second" if seconds == 1 else f"{seconds} seconds"
    else:
        wait = f"{math.ceil(seconds / 60)} minutes"
    refusal = f"Too many failed attempts from here. Try again in {wait}."
    response = Response(render_template(template, form=form, refusal=refusal), status=429)
    response.headers["Retry-After"] = str(seconds)
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("staff/login.html", form=form), 400 if form.is_submitted() else 200
    try:
        user = authenticate(
            db.session,
            email=form.email.data or "",
            password=form.password.data or "",
            code=form.code.data or "",
            remote_addr=request.remote_addr,
        )
    except LoginThrottled as exc:
        return _throttled("staff/login.html", form, exc)
    except LoginRefused:
        db.session.commit()
        refusal = "The e-mail address, password or code is not right."
        return render_template("staff/login.html", form=form, refusal=refusal), 400
    db.session.commit()
    _start_session(user)
    return redirect(_safe_next(request.args.get("next")))


@bp.post("/logout")
def logout() -> Response:
    sign_out(db.session, _me())
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are signed out, everywhere you were signed in.", "info")
    return redirect(url_for("staff.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def change_password() -> str | Response | tuple[str, int]:
    """Change one's own password; the other sessions of the account end, this one goes on."""
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        status = 400 if form.is_submitted() else 200
        return render_template("staff/password.html", form=form), status
    try:
        version = change_own_password(
            db.session,
            _me(),
            current=form.current_password.data or "",
            new=form.new_password.data or "",
            remote_addr=request.remote_addr,
        )
    except LoginThrottled as exc:
        return _throttled("staff/password.html", form, exc)
    except LoginRefused:
        db.session.commit()
        form.current_password.errors = ["This is not your current password."]
        return render_template("staff/password.html", form=form), 400
    except StaffError as exc:
        db.session.commit()
        form.new_password.errors = [f"{str(exc).capitalize()}."]
        return render_template("staff/password.html", form=form), 400
    db.session.commit()
    session[VERSION] = version
    flash("Your password is changed. Every other session of yours has ended.", "info")
    return redirect(url_for("staff.inbox"))
