"""Base fixtures: an app on a fresh SQLite file per test, its client and CLI runner.

Real servers (Dovecot, SMTP, Chromium) come from ``tests/servers/fixtures.py``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import event
from werkzeug.test import TestResponse

from portal import create_app
from portal.config import get_settings
from portal.extensions import db
from portal.services import delivery
from portal.services.delivery import Round

pytest_plugins = ["tests.servers.fixtures", "tests.factories"]

OUR_AUTHSERV_ID = "mx.example.org"
_CSRF_INPUT = re.compile(r'<input[^>]*name="csrf_token"[^>]*>')
_VALUE = re.compile(r'value="([^"]+)"')


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in its own app context, as in production.

    The ``app`` fixture keeps an app context open for the test's own database work; without
    this, requests would share its ``g`` (and so a cached CSRF token) and its DB session.
    """

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:  # type: ignore[override]
        with self.application.app_context():
            return super().open(*args, **kwargs)


def make_app(tmp_path: Path, **overrides: Any) -> Flask:
    config: dict[str, Any] = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "SECRET_KEY": "test-secret-key",
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "BLOB_DIR": str(tmp_path / "blobs"),
        "MAIL_SERVER": "",
        "REQUEST_RATE_LIMIT": "1000 per hour",
        # Our receiving server, whose Authentication-Results the bridge trusts (and only its).
        "MAIL_AUTHSERV_ID": OUR_AUTHSERV_ID,
    }
    config.update(overrides)
    app = create_app(config)
    app.test_client_class = IsolatedClient
    return app


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Override in a test module (or parametrize) to change the app's configuration."""
    return {}


@pytest.fixture
def app(tmp_path: Path, app_config: dict[str, Any]) -> Iterator[Flask]:
    app = make_app(tmp_path, **app_config)
    with app.app_context():
        # Tests build the schema from the models; test_migrations checks Alembic gives the same.
        db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def csrf_token(response: TestResponse) -> str:
    tag = _CSRF_INPUT.search(response.get_data(as_text=True))
    assert tag, "no CSRF token on the page"
    value = _VALUE.search(tag[0])
    assert value, "CSRF input without a value"
    return value[1]


def post_form(client: FlaskClient, url: str, data: dict[str, Any], **kwargs: Any) -> TestResponse:
    """Submit a form the way a browser does: load the page, then post with its CSRF token."""
    page = client.get(url)
    return client.post(url, data={**data, "csrf_token": csrf_token(page)}, **kwargs)


def work_outbox(app: Flask) -> Round:
    """One round of the delivery worker (`outbox run`): stored jobs, then due mail. Web
    requests only queue; a test that expects mail runs the worker, as production does."""
    with app.app_context():
        return delivery.work_once(db.session, get_settings(), str(app.secret_key))


@pytest.fixture
def inserts(app: Flask) -> Iterator[Counter[str]]:
    """INSERT statements sent to the database, by table (an executemany counts once)."""
    counts: Counter[str] = Counter()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        words = statement.split()
        if len(words) > 2 and words[0].upper() == "INSERT" and words[1].upper() == "INTO":
            counts[words[2].strip('"')] += 1

    event.listen(db.engine, "before_cursor_execute", count)
    yield counts
    event.remove(db.engine, "before_cursor_execute", count)
