"""Alembic is the only way the schema changes: upgrading to head must give the models' schema."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, select, text

from portal.extensions import db
from portal.search import is_search_table
from tests.conftest import make_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def empty_app(tmp_path: Path, new_database: Callable[[str], str]):  # type: ignore[no-untyped-def]
    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=new_database("migrations"))
    with app.app_context():
        yield app
        db.engine.dispose()


def test_upgrade_to_head_matches_the_models(empty_app) -> None:  # type: ignore[no-untyped-def]
    upgrade()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "render_as_batch": True,
                "include_object": lambda obj, name, type_, *_: (
                    not (type_ == "table" and is_search_table(name))
                ),
            },
        )
        assert compare_metadata(context, db.metadata) == []


def test_downgrade_to_base_and_up_again(empty_app) -> None:  # type: ignore[no-untyped-def]
    upgrade()
    downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade()
    assert "cases" in inspect(db.engine).get_table_names()


def _flask_db_upgrade(url: str, tmp_path: Path) -> None:
    """``flask --app wsgi db upgrade`` in a process of its own, as an operator runs it."""
    env = {
        "PATH": str(Path(sys.executable).parent),
        "PORTAL_DATABASE_URL": url,
        "PORTAL_SECRET_KEY": "x",
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_flask_db_upgrade_command_on_an_empty_database(
    tmp_path: Path, new_database: Callable[[str], str]
) -> None:
    """On PostgreSQL this stopped at 0004 (`column "urgent" is of type boolean but default
    expression is of type integer`)."""
    url = new_database("cli")
    _flask_db_upgrade(url, tmp_path)
    engine = create_engine(url)
    try:
        assert {"cases", "messages", "reporters", "audit_events"} <= set(
            inspect(engine).get_table_names()
        )
        # Mail stored without saying whether it is urgent is not (0004's server default).
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO messages (direction, channel, recipients, created_at, "
                    "auth_results, auto_submitted, bounce, quarantined) VALUES ('inbound', "
                    "'mail', '[]', :now, '{}', :no, :no, :no)"
                ),
                {"now": datetime(2026, 1, 1, tzinfo=UTC), "no": False},
            )
            assert connection.execute(text("SELECT urgent FROM messages")).scalar() in (0, False)
    finally:
        engine.dispose()


@pytest.mark.sqlite_only
def test_a_migrated_sqlite_database_is_in_wal_mode_with_foreign_keys(
    tmp_path: Path, new_database: Callable[[str], str]
) -> None:
    url = new_database("cli")
    _flask_db_upgrade(url, tmp_path)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.sqlite_only
def test_upgrade_keeps_existing_cases_messages_and_parties(empty_app) -> None:  # type: ignore[no-untyped-def]
    """Data-carrying: rebuilding `cases` in batch mode must not cascade into its children."""
    upgrade(revision="568dd802d137")
    with db.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO reporters (id, canonical_email, email, created_at) "
            "VALUES (1, 'r@example.org', 'r@example.org', '2026-01-01 00:00:00')"
        )
        for case_id, due in ((1, "2026-02-01 00:00:00"), (2, None)):
            connection.exec_driver_sql(
                "INSERT INTO cases (id, reference, kind, team, status, priority, due_at, "
                "requester_id, evidence_urls, prior_attempt_urls, confidential, created_at, "
                "updated_at) VALUES (?, ?, 'request', 'trust_safety', 'new', 'normal', ?, 1, "
                "'[]', '[]', 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
                (case_id, f"OA-2026-00000{case_id}", due),
            )
            connection.exec_driver_sql(
                "INSERT INTO messages (case_id, direction, channel, recipients, subject, "
                "body_text, created_at, auth_results, auto_submitted, bounce, quarantined) "
                "VALUES (?, 'inbound', 'web', '[]', 'Old subject', 'Needle text', "
                "'2026-01-01 00:00:00', '{}', 0, 0, 0)",
                (case_id,),
            )
            connection.exec_driver_sql(
                "INSERT INTO case_parties (case_id, address, role, details) "
                "VALUES (?, 'r@example.org', 'requester', '{}')",
                (case_id,),
            )
    upgrade()
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM messages").scalar() == 2
        assert connection.exec_driver_sql("SELECT count(*) FROM case_parties").scalar() == 2
        rows = connection.exec_driver_sql(
            "SELECT id, queue_due_at FROM cases ORDER BY id"
        ).fetchall()
        assert rows[0][1].startswith("2026-02-01")
        assert rows[1][1].startswith("9999-12-31")
        # Messages stored before the search index existed are found by it.
        found = connection.exec_driver_sql(
            "SELECT rowid FROM message_search WHERE message_search MATCH 'needle'"
        ).fetchall()
        assert len(found) == 2
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        triggers = {
            row[0]
            for row in connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            )
        }
        assert {"messages_search_ai", "messages_search_ad", "messages_search_au"} <= triggers
    # Mail stored after the migrations is found too: no rebuild of `messages` lost the
    # triggers (regression from the first version of 0004).
    with db.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO messages (case_id, direction, channel, recipients, subject, body_text, "
            "created_at, auth_results, auto_submitted, bounce, quarantined, urgent) VALUES "
            "(1, 'inbound', 'mail', '[]', 'Later', 'Haystack text', '2026-02-01 00:00:00', "
            "'{}', 0, 0, 0, 0)"
        )
    with db.engine.connect() as connection:
        found = connection.exec_driver_sql(
            "SELECT rowid FROM message_search WHERE message_search MATCH 'haystack'"
        ).fetchall()
        assert len(found) == 1


def test_upgrade_keys_the_existing_audit_chain_and_keeps_its_old_breaks(empty_app) -> None:  # type: ignore[no-untyped-def]
    """Data-carrying (0008): rows chained with plain SHA-256, one of them forked by two
    concurrent writers, come out numbered and keyed; the fork is not laundered away but named
    in the `audit.keyed` event appended at the end."""
    import hashlib
    import json

    upgrade(revision="0007_search_triggers")
    prev: str | None = None
    rows: list[dict[str, str | None]] = []
    for number in range(1, 5):
        created = f"2026-01-0{number} 00:00:00"
        # Row 3 forked: it links to row 1's hash, as a second writer reading the old head would.
        link = rows[0]["hash"] if number == 3 else prev
        payload = json.dumps(
            [link, None, "system", f"event.{number}", {}, f"2026-01-0{number}T00:00:00+00:00"],
            sort_keys=True,
            separators=(",", ":"),
        )
        digest = hashlib.sha256(payload.encode()).hexdigest()
        rows.append({"action": f"event.{number}", "created": created, "prev": link, "hash": digest})
        prev = digest
    with db.engine.begin() as connection:
        for row in rows:  # one at a time: the ids (1 to 4) are given in this order
            connection.execute(
                text(
                    "INSERT INTO audit_events (actor, action, details, created_at, prev_hash, "
                    "row_hash) VALUES ('system', :action, '{}', :created, :prev, :hash)"
                ),
                row,
            )
    upgrade()

    from portal.models import AuditEvent
    from portal.services.audit import broken_links

    assert list(broken_links(db.session)) == []
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert [e.action for e in events[:4]] == ["event.1", "event.2", "event.3", "event.4"]
    assert events[-1].action == "audit.keyed"
    assert events[-1].details == {"events": 4, "unkeyed_chain_broken_at": [3]}
