"""Signing in and out. Password and TOTP code together; failures are throttled in the DB."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import login_user, logout_user
from werkzeug.wrappers import Response

from portal.extensions import db, login_manager
from portal.models import StaffUser
from portal.services.staff import LoginRefused, LoginThrottled, authenticate
from portal.staff import bp
from portal.staff.forms import LoginForm


@login_manager.user_loader
def load_user(user_id: str) -> StaffUser | None:
    user = db.session.get(StaffUser, int(user_id)) if user_id.isdigit() else None
    return user if user is not None and user.active else None


def _safe_next(target: str | None) -> str:
    """Only ever go back to one of our own staff pages after signing in."""
    if target and target.startswith("/staff/") and not target.startswith("//"):
        return target
    return url_for("staff.inbox")


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
    except LoginThrottled:
        db.session.commit()
        form.form_errors.append("Too many failed attempts. Wait fifteen minutes, then try again.")
        return render_template("staff/login.html", form=form), 429
    except LoginRefused:
        db.session.commit()
        form.form_errors.append("The e-mail address, password or code is not right.")
        return render_template("staff/login.html", form=form), 400
    db.session.commit()
    session.clear()  # a fresh session: nothing from before sign-in carries over
    session.permanent = True
    login_user(user)
    return redirect(_safe_next(request.args.get("next")))


@bp.post("/logout")
def logout() -> Response:
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("staff.login"))
