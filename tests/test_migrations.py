"""Alembic is the only way the schema changes: upgrading to head must give the models' schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect

from portal.extensions import db
from tests.conftest import make_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def empty_app(tmp_path: Path):  # type: ignore[no-untyped-def]
    app = make_app(tmp_path)
    with app.app_context():
        yield app
        db.engine.dispose()


def test_upgrade_to_head_matches_the_models(empty_app) -> None:  # type: ignore[no-untyped-def]
    upgrade()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        assert compare_metadata(context, db.metadata) == []


def test_downgrade_to_base_and_up_again(empty_app) -> None:  # type: ignore[no-untyped-def]
    upgrade()
    downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade()
    assert "cases" in inspect(db.engine).get_table_names()


def test_flask_db_upgrade_command_on_an_empty_database(tmp_path: Path) -> None:
    database = tmp_path / "cli.sqlite3"
    env = {
        "PATH": str(Path(sys.executable).parent),
        "PORTAL_DATABASE_URL": f"sqlite:///{database}",
        "PORTAL_SECRET_KEY": "x",
        "HOME": str(tmp_path),
    }
    subprocess.run(
        [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert {"cases", "messages", "reporters", "audit_events"} <= set(
            inspect(engine).get_table_names()
        )
    finally:
        engine.dispose()
