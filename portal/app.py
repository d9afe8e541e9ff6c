"""``create_app``: wires configuration, extensions and blueprints into the Flask app."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from portal import database, search  # noqa: F401  (SQLite pragmas; FTS5 DDL for create_all)
from portal.config import configure
from portal.extensions import csrf, db, limiter, login_manager, mail, migrate

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(
        "portal",  # the package, as before create_app moved here: same name, logger and root
        template_folder=str(PROJECT_ROOT / "templates"),
        instance_path=str(PROJECT_ROOT / "instance"),
    )
    settings = configure(app, config)
    _configure_logging(app)
    if settings.trusted_proxies > 0:
        # The client's address (and scheme) as the nearest N proxies saw it; no more hops,
        # so an X-Forwarded-For the client wrote itself is never believed.
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    db.init_app(app)
    migrate.init_app(
        app,
        db,
        directory=str(PROJECT_ROOT / "migrations"),
        render_as_batch=True,
        compare_type=True,
    )
    csrf.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)

    from portal import errors, health, security
    from portal.cli import register_cli
    from portal.public import bp as public_bp
    from portal.staff import bp as staff_bp

    app.register_blueprint(public_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(health.bp)
    errors.register(app)
    security.register(app)
    register_cli(app)
    return app


def _configure_logging(app: Flask) -> None:
    """Our loggers speak at INFO unless told otherwise; Flask's handler prints them."""
    level = app.config.get("LOG_LEVEL", "INFO")
    for name in ("portal", "mailbridge"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not logger.handlers and not logging.getLogger().handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
            logger.addHandler(handler)
