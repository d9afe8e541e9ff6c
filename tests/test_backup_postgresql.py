"""Backups on PostgreSQL: pg_dump of an exported snapshot, pg_restore into an empty database."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Case
from portal.policy.actions import ActionType
from portal.services.cases import RequestSubmission, open_request
from portal.storage import BlobStore
from tests.conftest import make_app, work_outbox
from tests.test_backup import WRITER_CONFIG, audit_verify, dispose, fill, restore, sha256


@pytest.fixture
def postgresql_urls(new_database: Callable[[str], str]) -> tuple[str, str]:
    """Two empty PostgreSQL databases (source, target) on the test server."""
    return new_database("backup_source"), new_database("backup_target")


def new_case() -> Case:
    case = open_request(
        db.session,
        RequestSubmission(
            action=ActionType("global_ban"),
            summary="Harassment across wikis",
            requester_email="requester@example.org",
            requester_name="Requester",
        ),
    )
    db.session.commit()
    return case


@pytest.mark.postgresql_only
def test_a_postgresql_backup_restores_whole(
    tmp_path: Path, postgresql_urls: tuple[str, str]
) -> None:
    """pg_dump of an exported snapshot, pg_restore into an empty database."""
    source_url, target_url = postgresql_urls
    (tmp_path / "source").mkdir()
    source = make_app(tmp_path / "source", SQLALCHEMY_DATABASE_URI=source_url, **WRITER_CONFIG)
    with source.app_context():
        db.create_all()
        fill(source.test_cli_runner(), source.test_client(), new_case)
        result = source.test_cli_runner().invoke(args=["backup", "create", str(tmp_path / "b")])
        assert result.exit_code == 0, result.output
        db.engine.dispose()
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert (manifest["database"]["dialect"], manifest["database"]["file"]) == (
        "postgresql",
        "database.pgdump",
    )
    assert len(manifest["blobs"]) == 3
    assert len(manifest["staged"]) == 1

    (tmp_path / "target").mkdir()
    target = make_app(tmp_path / "target", SQLALCHEMY_DATABASE_URI=target_url, **WRITER_CONFIG)
    result = restore(target, tmp_path / "b")
    assert result.exit_code == 0, result.output
    assert audit_verify(target).output.strip() == "audit trail intact"
    store = BlobStore(Path(target.config["BLOB_DIR"]))
    for entry in manifest["blobs"]:
        assert sha256(store.read(entry["sha256"])) == entry["sha256"]
    with target.app_context():
        assert db.session.scalar(select(func.count(Case.id))) == manifest["counts"]["cases"]
    assert work_outbox(target).jobs.done == 1  # the staged document came back too
    dispose(target)
