"""Base fixtures: an app on a fresh database per test, its client and CLI runner.

Every test that touches the database runs on SQLite and on PostgreSQL (``PORTAL_TEST_DATABASE``
= ``sqlite``, ``postgresql`` or ``both``, the default): its id ends in ``[sqlite]`` or
``[postgresql]``. Each run gets its own database holding the models' schema, copied from a
template made once per session (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on
PostgreSQL). Tests of SQLite-only behaviour carry ``@pytest.mark.sqlite_only``.

Real servers (Dovecot, SMTP, Chromium, PostgreSQL) come from ``tests/servers/fixtures.py``.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
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
from tests.servers.postgres import PostgresServer

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


# -- the databases ---------------------------------------------------------------------------

DATABASES = ("sqlite", "postgresql")
# Set by the `database_url` fixture for the test that runs: `make_app` reads it, and so do the
# processes a test starts (they inherit the environment), so they all share one database.
# Not PORTAL_-prefixed: the app would load it into its config.
URL_VARIABLE = "TESTS_PORTAL_DATABASE_URL"


def selected_databases() -> tuple[str, ...]:
    """The databases this run covers, from ``PORTAL_TEST_DATABASE`` (default: both)."""
    chosen = os.environ.get("PORTAL_TEST_DATABASE", "both").strip().lower() or "both"
    if chosen == "both":
        return DATABASES
    if chosen not in DATABASES:
        raise pytest.UsageError(
            f"PORTAL_TEST_DATABASE={chosen!r}: expected sqlite, postgresql or both"
        )
    return (chosen,)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that uses the database once per selected database.

    A ``sqlite_only`` test gets no PostgreSQL run next to its SQLite one (and a
    ``postgresql_only`` test no SQLite run); when only the other database is selected it is
    reported as skipped, so it is never silently missing.
    """
    if "database_kind" not in metafunc.fixturenames:
        return
    only = [kind for kind in DATABASES if metafunc.definition.get_closest_marker(f"{kind}_only")]
    selected = selected_databases()
    params = [pytest.param(kind, id=kind) for kind in selected if not only or kind in only]
    if not params:
        skip = pytest.mark.skip(reason=f"{only[0]}_only")
        params = [pytest.param(kind, id=kind, marks=skip) for kind in selected]
    metafunc.parametrize("database_kind", params, indirect=True, scope="session")


@pytest.fixture(scope="session")
def database_kind(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql``: the database this run of the test uses."""
    return str(getattr(request, "param", selected_databases()[0]))


def current_database_url() -> str:
    """The URL of the running test's database, in the test or in a process it started.

    Only tests that request ``database_url`` (``app`` does) have one: any other would run on
    one database only while its id claims nothing about it.
    """
    url = os.environ.get(URL_VARIABLE)
    if not url:
        raise RuntimeError("this test uses the database: request the `database_url` fixture")
    return url


def _test_config(database_url: str, tmp_path: Path) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret-key",
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "BLOB_DIR": str(tmp_path / "blobs"),
        "MAIL_SERVER": "",
    }


def _create_schema(url: str, tmp_path: Path) -> None:
    """The models' schema in the database at ``url``, as the tests' template."""
    app = create_app(_test_config(url, tmp_path))
    with app.app_context():
        db.create_all()
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file holding the schema (FTS5 triggers included), copied for each test."""
    directory = tmp_path_factory.mktemp("sqlite-template")
    path = directory / "template.sqlite3"
    _create_schema(f"sqlite:///{path}", directory)
    return path


@pytest.fixture(scope="session")
def postgresql_template(
    postgresql: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A PostgreSQL database holding the schema, the template of each test's database."""
    name = "portal_template"
    postgresql.drop_database(name)
    postgresql.create_database(name)
    _create_schema(postgresql.url(name), tmp_path_factory.mktemp("postgresql-template"))
    return name


_database_numbers = itertools.count(1)


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest,
    database_kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """This test's own database, holding the models' schema (as ``create_all`` makes it)."""
    if database_kind == "sqlite":
        path = tmp_path / "portal.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        monkeypatch.setenv(URL_VARIABLE, f"sqlite:///{path}")
        yield f"sqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("postgresql")
    template = request.getfixturevalue("postgresql_template")
    name = f"test_{next(_database_numbers)}"
    server.create_database(name, template=template)
    monkeypatch.setenv(URL_VARIABLE, server.url(name))
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.fixture
def new_database(
    request: pytest.FixtureRequest, database_kind: str, tmp_path: Path
) -> Iterator[Callable[[str], str]]:
    """Make empty databases (no tables: for migrations), each named once per test; returns
    a callable giving the new database's URL. On PostgreSQL they are dropped afterwards."""
    server: PostgresServer | None = (
        request.getfixturevalue("postgresql") if database_kind == "postgresql" else None
    )
    made: list[str] = []

    def make(name: str) -> str:
        if server is None:
            return f"sqlite:///{tmp_path / f'{name}.sqlite3'}"
        full_name = f"test_{next(_database_numbers)}_{name}"
        server.create_database(full_name)
        made.append(full_name)
        return server.url(full_name)

    yield make
    for name in made:
        assert server is not None
        server.drop_database(name)


def make_app(tmp_path: Path, **overrides: Any) -> Flask:
    """An app on the running test's database (see ``current_database_url``), or on the one
    given as ``SQLALCHEMY_DATABASE_URI``."""
    url = overrides.pop("SQLALCHEMY_DATABASE_URI", None) or current_database_url()
    config: dict[str, Any] = {
        **_test_config(url, tmp_path),
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
def app(database_url: str, tmp_path: Path, app_config: dict[str, Any]) -> Iterator[Flask]:
    """The app on this test's database, which holds the models' schema (test_migrations
    checks that Alembic makes the same one), with an app context open for the test."""
    app = make_app(tmp_path, **app_config)
    with app.app_context():
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
