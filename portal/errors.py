"""Error pages: calm words, the right status, and never the person's input thrown away."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

View = TypeVar("View", bound=Callable[..., Any])
Rerender = Callable[[MultiDict[str, str]], tuple[str, int]]


def keep_input_on_csrf_error(rerender: Rerender) -> Callable[[View], View]:
    """Mark a form view whose page, on an expired or missing CSRF token, is shown again with
    what the person typed (and a fresh token), rather than an error page that loses it."""

    def decorator(view: View) -> View:
        view._csrf_rerender = rerender  # type: ignore[attr-defined]
        return view

    return decorator


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int]:
        view = current_app.view_functions.get(request.endpoint or "")
        rerender: Rerender | None = getattr(view, "_csrf_rerender", None)
        if rerender is not None and request.method == "POST":
            g.csrf_expired = True
            page, _ = rerender(request.form)
            return page, 400
        return render_template("errors/error.html", error=error, csrf=True), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int]:
        template = "errors/429.html" if error.code == 429 else "errors/error.html"
        return render_template(template, error=error), error.code or 500

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> tuple[str, int]:
        log.exception("unhandled error on %s", request.endpoint)
        from portal.extensions import db

        db.session.rollback()
        return render_template("errors/error.html", error=None), 500
