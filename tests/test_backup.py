"""``backup create DIR`` / ``backup restore DIR``: a consistent snapshot, put back whole.

Issue: "PostgreSQL as a first-class database, and a deployment an operations team can run",
*Backups*: "writes a consistent snapshot (SQLite's online backup API or pg_dump, plus every
blob the database refers to, with a manifest of SHA-256 hashes); backup restore DIR into an
empty database. A test restores a snapshot taken under load and checks that audit verify
passes and every blob's hash matches."
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from mailbridge.cli import cli as mailbridge_cli
from portal.backup import references, snapshot
from portal.backup.manifest import BlobEntry, DatabaseDump, Manifest, ManifestError
from portal.config import get_settings
from portal.extensions import db
from portal.models import Appeal, Case, Job
from portal.policy.actions import ActionType
from portal.services.cases import RequestSubmission, open_request
from portal.storage import BlobStore
from tests.conftest import csrf_token, make_app, work_outbox
from tests.mailbridge_helpers import db_count, make_mail, wait_until

ROOT = Path(__file__).resolve().parent.parent
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
APPEAL_DOCUMENT = b"%PDF-1.4\n% an appeal's document, kept in the blob store\n%%EOF\n"
WRITER_CONFIG = {
    "MAIL_WORKERS": 0,
    "APPEAL_RATE_LIMIT": "1000 per hour",
    "APPEAL_ADDRESS_RATE_LIMIT": "1000 per day",
    "APPEAL_PAGE_RATE_LIMIT": "1000 per hour",
}


@pytest.fixture
def app_config() -> dict[str, Any]:
    return dict(WRITER_CONFIG)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fill(runner: FlaskCliRunner, client: FlaskClient, create_case: Callable[..., Case]) -> None:
    """Every kind of blob reference: raw mail and its attachment, an appeal's document, and a
    document staged for an appeal filing the delivery worker has not run yet."""
    eml = Path(get_settings().blob_dir).parent / "incoming.eml"
    eml.write_bytes(make_mail("Evidence", attachments=[("report.pdf", "application/pdf", PDF)]))
    result = runner.invoke(mailbridge_cli, ["import", str(eml), "--mailbox", "ca"])
    assert result.exit_code == 0, result.output
    case = create_case()
    document = BlobStore(get_settings().blob_dir).put(APPEAL_DOCUMENT)
    db.session.add(
        Appeal(
            case_id=case.id,
            role="subject",
            channel="web",
            appellant_email="subject@example.net",
            attachments=[
                {
                    "filename": "appeal.pdf",
                    "content_type": "application/pdf",
                    "size": document.size,
                    "sha256": document.sha256,
                }
            ],
        )
    )
    db.session.commit()
    page = client.get("/appeals/new")
    response = client.post(
        "/appeals/new",
        data={
            "case_reference": "OA-2026-999999",
            "appellant_email": "subject@example.net",
            "appellant_role": "subject",
            "reasons": "The evidence was misread.",
            "details": "",
            "website": "",
            "attachments": [(io.BytesIO(PDF), "evidence.pdf")],
            "csrf_token": csrf_token(page),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303


def backup(runner: FlaskCliRunner, directory: Path) -> Any:
    return runner.invoke(args=["backup", "create", str(directory)])


def fresh_app(tmp_path: Path, name: str = "restored") -> Flask:
    (tmp_path / name).mkdir()
    return make_app(tmp_path / name, **WRITER_CONFIG)


def in_app(app: Flask, *args: str) -> Any:
    """A command of ``app`` (Flask's CLI would run it in the test's own app context)."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args))


def restore(app: Flask, directory: Path) -> Any:
    return in_app(app, "backup", "restore", str(directory))


def database_file(app: Flask) -> Path:
    return Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))


def referenced(database: Path) -> list[str]:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return references.referenced_blobs(lambda sql: connection.execute(sql).fetchall())
    finally:
        connection.close()


def assert_every_blob_matches(app: Flask) -> int:
    """Every blob the database refers to is in the app's blob directory, byte for byte."""
    store = BlobStore(Path(app.config["BLOB_DIR"]))
    hashes = referenced(database_file(app))
    for digest in hashes:
        assert sha256(store.read(digest)) == digest
    return len(hashes)


def audit_verify(app: Flask) -> Any:
    return in_app(app, "audit", "verify")


def dispose(app: Flask) -> None:
    with app.app_context():
        db.engine.dispose()


# -- round trip -----------------------------------------------------------------------------


def test_a_backup_restores_into_an_empty_database_whole(
    tmp_path: Path,
    app: Flask,
    runner: FlaskCliRunner,
    client: FlaskClient,
    create_case: Callable[..., Case],
) -> None:
    fill(runner, client, create_case)
    directory = tmp_path / "backup"
    result = backup(runner, directory)
    assert result.exit_code == 0, result.output
    assert "backup written to" in result.output
    assert "3 blobs" in result.output  # the raw mail, its attachment, the appeal's document
    assert "1 staged files" in result.output
    assert os.stat(directory).st_mode & 0o777 == 0o700

    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["format"] == "office-actions-portal-backup"
    assert manifest["app_version"] == "0.1.0"
    assert manifest["alembic_revision"] is None  # the tests' schema comes from create_all
    assert manifest["created_at"].endswith("Z")
    assert manifest["missing_blobs"] == []
    assert manifest["missing_staged"] == []
    dump = directory / manifest["database"]["file"]
    assert manifest["database"]["sha256"] == sha256(dump.read_bytes())
    listed = {entry["sha256"]: entry["size"] for entry in manifest["blobs"]}
    assert sha256(PDF) in listed
    assert sha256(APPEAL_DOCUMENT) in listed
    for digest, size in listed.items():
        copy = directory / "blobs" / digest[:2] / digest[2:4] / digest
        assert (sha256(copy.read_bytes()), copy.stat().st_size) == (digest, size)
    [staged] = manifest["staged"]
    assert staged["sha256"] == sha256(PDF)
    assert manifest["counts"]["cases"] == 2  # the mail's inquiry and the decided case

    restored = fresh_app(tmp_path)
    result = restore(restored, directory)
    assert result.exit_code == 0, result.output
    assert "restored the backup of" in result.output
    assert "3 blobs" in result.output
    assert audit_verify(restored).output.strip() == "audit trail intact"
    assert assert_every_blob_matches(restored) == 3
    # The appeal filing waiting in the backup is filed from the restored copy of its document.
    outcome = work_outbox(restored)
    assert (outcome.jobs.done, outcome.jobs.failed) == (1, 0)
    with restored.app_context():
        assert db.session.scalars(select(Job.state)).all() == ["done"]
    dispose(restored)


def test_a_backup_goes_into_a_new_or_empty_directory(
    tmp_path: Path, runner: FlaskCliRunner
) -> None:
    directory = tmp_path / "backup"
    directory.mkdir()
    (directory / "yesterday.txt").write_text("an older backup")
    result = backup(runner, directory)
    assert result.exit_code == 1
    assert "is not an empty directory" in result.output
    assert sorted(p.name for p in directory.iterdir()) == ["yesterday.txt"]


def test_a_blob_missing_from_the_store_makes_the_backup_incomplete(
    tmp_path: Path,
    app: Flask,
    runner: FlaskCliRunner,
    client: FlaskClient,
    create_case: Callable[..., Case],
) -> None:
    fill(runner, client, create_case)
    BlobStore(Path(app.config["BLOB_DIR"])).path_for(sha256(APPEAL_DOCUMENT)).unlink()
    result = backup(runner, tmp_path / "backup")
    assert result.exit_code == 1
    assert "backup INCOMPLETE: 1 blob(s)" in result.output
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["missing_blobs"] == [sha256(APPEAL_DOCUMENT)]


def test_restore_refuses_a_database_that_is_not_empty(
    tmp_path: Path,
    app: Flask,
    runner: FlaskCliRunner,
    client: FlaskClient,
    create_case: Callable[..., Case],
) -> None:
    fill(runner, client, create_case)
    assert backup(runner, tmp_path / "backup").exit_code == 0
    before = database_file(app).read_bytes()
    result = restore(app, tmp_path / "backup")
    assert result.exit_code == 1
    assert "the database is not empty (rows in " in result.output
    assert "cases" in result.output
    assert database_file(app).read_bytes() == before


@pytest.mark.parametrize("damage", ["blob", "dump", "missing"])
def test_restore_checks_every_file_before_writing_anything(
    tmp_path: Path,
    app: Flask,
    runner: FlaskCliRunner,
    client: FlaskClient,
    create_case: Callable[..., Case],
    damage: str,
) -> None:
    fill(runner, client, create_case)
    directory = tmp_path / "backup"
    assert backup(runner, directory).exit_code == 0
    manifest = json.loads((directory / "manifest.json").read_text())
    digest = manifest["blobs"][-1]["sha256"]
    blob = directory / "blobs" / digest[:2] / digest[2:4] / digest
    if damage == "blob":
        blob.write_bytes(blob.read_bytes()[:-1] + b"!")
    elif damage == "dump":
        with open(directory / manifest["database"]["file"], "ab") as dump:
            dump.write(b"\0")
    else:
        blob.unlink()
    restored = fresh_app(tmp_path)
    result = restore(restored, directory)
    assert result.exit_code == 1
    assert "nothing was restored" in result.output
    with restored.app_context():
        assert db.engine.dialect.get_table_names(db.engine.connect()) == []
    assert not Path(restored.config["BLOB_DIR"]).exists()
    dispose(restored)


def test_restore_refuses_a_directory_without_a_manifest(tmp_path: Path, app: Flask) -> None:
    (tmp_path / "half").mkdir()
    result = restore(app, tmp_path / "half")
    assert result.exit_code == 1
    assert "has no manifest.json: it is not a backup, or one that did not finish" in result.output


# -- the manifest and the references, directly --------------------------------------------------


def manifest_text(**changes: Any) -> str:
    manifest = Manifest(
        created_at="2026-12-02T13:00:00Z",
        app_version="0.1.0",
        alembic_revision="0015_deploy",
        database=DatabaseDump("sqlite", "database.sqlite3", "a" * 64, 10),
        blobs=[BlobEntry("b" * 64, 3)],
    )
    body = json.loads(manifest.to_json())
    body.update(changes)
    return json.dumps(body)


def test_a_manifest_reads_back_as_written() -> None:
    manifest = Manifest.from_json(manifest_text())
    assert manifest.blobs == [BlobEntry("b" * 64, 3)]
    assert manifest.blobs[0].relative_path() == "bb/bb/" + "b" * 64
    assert manifest.alembic_revision == "0015_deploy"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "something-else"}, "not the manifest of a portal backup"),
        ({"format_version": 2}, "format version 2"),
        ({"blobs": [{"sha256": "../../../etc/passwd", "size": 1}]}, "not a SHA-256"),
        (
            {"database": {"dialect": "sqlite", "file": "../x", "sha256": "a" * 64, "size": 1}},
            "plain name",
        ),
        (
            {"staged": [{"key": "../..", "index": 0, "sha256": "a" * 64, "size": 1}]},
            "not a staging key",
        ),
        ({"blobs": None}, "incomplete"),
    ],
)
def test_a_manifest_names_nothing_outside_the_backup(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        Manifest.from_json(manifest_text(**changes))


def test_appeal_documents_and_staged_files_are_found_in_json_columns() -> None:
    digest = "c" * 64
    assert references.appeal_blob_hashes(
        [json.dumps([{"sha256": digest}]), [{"sha256": digest.upper()}], None, "[]", [{}]]
    ) == {digest}
    key = "d" * 32
    found = references.staged_files(
        [
            (1, json.dumps({"staged": key, "files": [{}, {}]})),
            (2, {"staged": "../../etc", "files": [{}]}),
            (3, {}),
            (4, None),
        ]
    )
    assert found == [references.StagedFiles(1, key, 2)]


def test_a_staged_file_still_being_written_is_copied_only_once_complete(tmp_path: Path) -> None:
    """A web request writes its staged files, then commits the job naming them: a copy taken
    before the snapshot may catch one half written, so it waits for the copy after."""
    staging = tmp_path / "blobs" / ".staging"
    settled, fresh = staging / ("a" * 32), staging / ("b" * 32)
    settled.mkdir(parents=True)
    fresh.mkdir()
    (settled / "0").write_bytes(b"written a minute ago")
    os.utime(settled / "0", (time.time() - 60, time.time() - 60))
    (fresh / "0").write_bytes(b"half of it")
    copies = tmp_path / "copies"
    snapshot._copy_staging(staging, copies, keys=None)  # before the snapshot
    assert [path.name for path in copies.iterdir()] == [settled.name]
    (fresh / "0").write_bytes(b"half of it, and the rest")
    snapshot._copy_staging(staging, copies, keys={fresh.name})  # after it
    assert (copies / fresh.name / "0").read_bytes() == b"half of it, and the rest"


# -- under load -----------------------------------------------------------------------------


def start_writer(kind: str, db_dir: Path, stop: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.backup_writer", kind, str(db_dir), str(stop)],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_a_backup_taken_under_load_restores_consistent(
    tmp_path: Path, app: Flask, runner: FlaskCliRunner
) -> None:
    """Three processes file requests, mail with attachments and appeals with documents while
    the backup runs; the restored copy's audit chain is intact and every blob matches."""
    database = database_file(app)
    stop = tmp_path / "stop"
    writers = {
        kind: start_writer(kind, tmp_path, stop, tmp_path / f"writer-{kind}.log")
        for kind in ("requests", "mail", "appeals")
    }
    try:
        # Under way: each kind has written before the backup starts.
        assert wait_until(
            lambda: (
                db_count(database, "SELECT count(*) FROM messages WHERE raw_sha256 IS NOT NULL")
                >= 3
            ),
            120,
        )
        assert wait_until(lambda: db_count(database, "SELECT count(*) FROM jobs") >= 3, 120)
        assert wait_until(lambda: db_count(database, "SELECT count(*) FROM cases") >= 10, 120)
        result = backup(runner, tmp_path / "backup")
        assert result.exit_code == 0, result.output
        manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
        # ... and they went on writing after it: the backup is a snapshot of a moment.
        cases_then = manifest["counts"]["cases"]
        assert wait_until(
            lambda: db_count(database, "SELECT count(*) FROM cases") > cases_then + 3, 120
        )
    finally:
        stop.touch()
        outputs = {}
        for kind, writer in writers.items():
            writer.wait(timeout=120)
            outputs[kind] = (tmp_path / f"writer-{kind}.log").read_text()
    for kind, writer in writers.items():
        assert writer.returncode == 0, outputs[kind]
        assert int(outputs[kind].split()[-1]) > 0

    restored = fresh_app(tmp_path)
    result = restore(restored, tmp_path / "backup")
    assert result.exit_code == 0, result.output
    verify = audit_verify(restored)
    assert verify.exit_code == 0, verify.output
    assert verify.output.strip() == "audit trail intact"
    assert assert_every_blob_matches(restored) == len(manifest["blobs"]) >= 6
    with restored.app_context():
        assert db.session.scalar(select(func.count(Case.id))) == cases_then
    # The staged documents of the filings still waiting came along (unless their job finished
    # between the two copies, which the manifest then says).
    staging = Path(restored.config["BLOB_DIR"]) / ".staging"
    for entry in manifest["staged"]:
        path = staging / entry["key"] / str(entry["index"])
        assert sha256(path.read_bytes()) == entry["sha256"]
    dispose(restored)


# -- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture
def postgresql_urls(request: pytest.FixtureRequest) -> tuple[str, str]:
    """Two empty PostgreSQL databases (source, target) on the test server, when the suite has
    one: the fixture ``postgresql_url`` (tests/servers) gives an empty database per test."""
    try:
        source = str(request.getfixturevalue("postgresql_url"))
    except pytest.FixtureLookupError:
        pytest.skip("no PostgreSQL test server in this suite (fixture postgresql_url)")
    url = make_url(source)
    target = url.set(database=f"{url.database}_restored")
    engine = create_engine(source, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}"'))
        connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    engine.dispose()
    return source, target.render_as_string(hide_password=False)


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
