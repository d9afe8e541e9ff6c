"""``PORTAL_RATELIMIT_STORAGE_URI=database://``: limits counted once for every worker and host.

Issue: "PostgreSQL as a first-class database, and a deployment an operations team can run":
production refuses the in-memory store under several workers, and offers Redis "or a
database-backed store". This is the latter.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from portal.extensions import db
from portal.ratelimit_store import DatabaseStorage, counter_key, storage_uri
from tests.conftest import make_app, post_form
from tests.public_data import valid_request

URL = "/requests/new"
KEY = "LIMITER/192.0.2.7/appellant josé@exämple.com/5/1/day"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def storage(app: Flask, clock: Clock) -> DatabaseStorage:
    return DatabaseStorage(storage_uri(app.config["SQLALCHEMY_DATABASE_URI"]), clock=clock)


def test_hits_count_up_within_a_window_and_start_again_after(
    storage: DatabaseStorage, clock: Clock
) -> None:
    assert storage.get(KEY) == 0
    assert [storage.incr(KEY, 60) for _ in range(3)] == [1, 2, 3]
    assert storage.incr(KEY, 60, amount=2) == 5
    assert storage.get(KEY) == 5
    assert storage.get_expiry(KEY) == clock.now + 60
    clock.now += 59.9
    assert storage.incr(KEY, 60) == 6  # a hit does not stretch the window
    clock.now += 0.1
    assert storage.get(KEY) == 0
    assert storage.get_expiry(KEY) == clock.now
    assert storage.incr(KEY, 60) == 1
    assert storage.get_expiry(KEY) == clock.now + 60


def test_clear_and_reset(storage: DatabaseStorage) -> None:
    storage.incr(KEY, 60)
    storage.incr("another", 60)
    storage.clear(KEY)
    assert storage.get(KEY) == 0
    assert storage.get("another") == 1
    assert storage.reset() == 1
    assert storage.get("another") == 0
    assert storage.check()


def test_the_table_holds_no_address(storage: DatabaseStorage, app: Flask) -> None:
    storage.incr(KEY, 60)
    rows = [tuple(row) for row in db.session.execute(text("SELECT key FROM rate_limit_counters"))]
    assert rows == [(counter_key(KEY),)]
    assert "exämple" not in rows[0][0]


def test_windows_that_ran_out_are_deleted(storage: DatabaseStorage, clock: Clock) -> None:
    storage.incr("old", 10)
    clock.now += 3600
    storage.incr(KEY, 60)  # the first hit of this process purges, then every few minutes
    with db.engine.connect() as connection:
        keys = {row[0] for row in connection.exec_driver_sql("SELECT key FROM rate_limit_counters")}
    assert keys == {counter_key(KEY)}


def _hit_many(uri: str, times: int, start: Any, results: Any) -> None:
    storage = DatabaseStorage(uri)
    start.wait()
    results.put([storage.incr(KEY, 3600) for _ in range(times)])


def test_two_processes_hitting_at_once_lose_no_hit(app: Flask) -> None:
    """Two gunicorn workers counting the same client: every hit gets its own number."""
    uri = storage_uri(app.config["SQLALCHEMY_DATABASE_URI"])
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    workers = [context.Process(target=_hit_many, args=(uri, 60, start, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    start.set()
    seen = results.get(timeout=120) + results.get(timeout=120)
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(seen) == list(range(1, 121))


def _file_requests(tmp_path: Path, config: dict[str, Any], times: int, statuses: Any) -> None:
    app = make_app(tmp_path, **config)
    client = app.test_client()
    statuses.put([post_form(client, URL, valid_request()).status_code for _ in range(times)])
    with app.app_context():
        db.engine.dispose()


def test_two_web_workers_share_one_limit(tmp_path: Path) -> None:
    """Two gunicorn workers are two processes on one database: one limit for both (with
    memory:// the second process would count from zero and file a third request)."""
    config = {
        "RATELIMIT_STORAGE_URI": "database://",
        "REQUEST_RATE_LIMIT": "2 per hour",
        # A file both processes open (the limit is about processes, not a database kind).
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'workers.sqlite3'}",
    }
    app = make_app(tmp_path, **config)
    with app.app_context():
        db.create_all()
    context = multiprocessing.get_context("spawn")
    statuses = context.Queue()
    other = context.Process(target=_file_requests, args=(tmp_path, config, 2, statuses))
    other.start()
    assert statuses.get(timeout=120) == [303, 303]
    other.join(timeout=30)
    assert post_form(app.test_client(), URL, valid_request()).status_code == 429
    with app.app_context():
        db.engine.dispose()
