"""``/healthz`` for a load balancer: 200 when the portal can work, 503 naming what cannot.

Issue: "PostgreSQL as a first-class database, and a deployment an operations team can run":
"database reachable, blob directory writable, oldest due outbound mail younger than a
threshold (200 or 503 with the failing check named, no secrets)".
"""

from __future__ import annotations

import multiprocessing
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal.extensions import db
from portal.models import OutboundMail
from portal.models.base import utcnow
from portal.models.message import OutboxState
from tests.conftest import make_app

URL = "/healthz"


def body_of(response: TestResponse) -> dict[str, Any]:
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def owed(state: str = OutboxState.PENDING, *, due_minutes_ago: float) -> OutboundMail:
    """A mail whose next attempt fell due that long ago (negative: not due yet)."""
    when = utcnow() - timedelta(minutes=due_minutes_ago)
    mail = OutboundMail(
        message_id=f"<{uuid.uuid4()}@portal.example.org>",
        envelope_from="ca@example.org",
        recipients=["reporter@example.org"],
        raw=b"Subject: hello\r\n\r\nhello\r\n",
        purpose="reply",
        state=state,
        next_attempt_at=when,
        created_at=when - timedelta(hours=5),
    )
    db.session.add(mail)
    db.session.commit()
    return mail


def test_all_well_is_a_200_with_every_check_named(client: FlaskClient) -> None:
    response = client.get(URL)
    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "checks": {"database": "ok", "blob_dir": "ok", "outbox": "ok"},
    }
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


def test_mail_due_a_while_but_within_the_limit_is_fine(client: FlaskClient) -> None:
    owed(due_minutes_ago=25)
    owed(due_minutes_ago=-600)  # waiting for a retry hours from now: not due
    owed(OutboxState.SENT, due_minutes_ago=600)
    owed(OutboxState.FAILED, due_minutes_ago=600)
    owed(OutboxState.SENDING, due_minutes_ago=-5)  # claimed by a live worker
    assert client.get(URL).status_code == 200


@pytest.mark.parametrize("state", [OutboxState.PENDING, OutboxState.SENDING])
def test_mail_due_longer_than_the_limit_means_no_worker_is_running(
    client: FlaskClient, state: str
) -> None:
    """A SENDING row whose claim ran out is a worker that died while sending."""
    owed(state, due_minutes_ago=47)
    response = client.get(URL)
    assert response.status_code == 503
    body = body_of(response)
    assert body["status"] == "failing"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["blob_dir"] == "ok"
    assert body["checks"]["outbox"].startswith("failing: ")
    assert "47 minutes" in body["checks"]["outbox"]
    assert "reporter@example.org" not in response.get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"HEALTH_MAIL_MAX_AGE_MINUTES": 60}])
def test_the_limit_is_a_setting(client: FlaskClient, app_config: dict[str, Any]) -> None:
    owed(due_minutes_ago=47)
    assert client.get(URL).status_code == 200
    owed(due_minutes_ago=61)
    assert client.get(URL).status_code == 503


def test_a_blob_directory_that_cannot_be_written_fails(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    app = make_app(
        tmp_path,
        BLOB_DIR=str(tmp_path / "a-file" / "blobs"),
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
    )
    with app.app_context():
        db.create_all()
    response = app.test_client().get(URL)
    assert response.status_code == 503
    checks = body_of(response)["checks"]
    assert checks["database"] == "ok"
    assert checks["blob_dir"].startswith("failing: ")
    assert str(tmp_path) not in response.get_data(as_text=True)
    with app.app_context():
        db.engine.dispose()


def test_the_check_leaves_nothing_in_the_blob_directory(app: Flask, client: FlaskClient) -> None:
    client.get(URL)
    blob_dir = Path(app.config["BLOB_DIR"])
    assert list(blob_dir.iterdir()) == []


def test_an_unreachable_database_fails_without_saying_where_it_is(tmp_path: Path) -> None:
    secret = "sqlite-secret-dir"
    app = make_app(
        tmp_path,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / secret / 'missing' / 'portal.sqlite3'}",
    )
    response = app.test_client().get(URL)
    assert response.status_code == 503
    checks = body_of(response)["checks"]
    assert checks["database"].startswith("failing: ")
    assert checks["outbox"].startswith("failing: ")  # cannot be told without the database
    assert checks["blob_dir"] == "ok"
    text = response.get_data(as_text=True)
    assert secret not in text
    assert "sqlite" not in text


def _statuses_with_a_default_limit(tmp_path: Path, queue: Any) -> None:
    app = make_app(
        tmp_path,
        RATELIMIT_DEFAULT="2 per hour",
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
    )
    with app.app_context():
        db.create_all()
    client = app.test_client()
    queue.put([client.get(path).status_code for path in [URL] * 5 + ["/requests/new"] * 3])


def test_never_rate_limited(tmp_path: Path) -> None:
    """A load balancer asks every few seconds from one address, whatever limits apply to all
    other pages. (In a process of its own: a default limit stays on Flask-Limiter's one
    limiter for every later app of the process.)"""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_statuses_with_a_default_limit, args=(tmp_path, queue))
    process.start()
    statuses = queue.get(timeout=120)
    process.join(timeout=30)
    assert statuses == [200] * 5 + [200, 200, 429]
