"""The audit trail's promises: one chain under concurrent writers, keyed, and anchored.

Issue: "Keep every promise under concurrency, hostile mail and non-ASCII addresses", item 1
("the audit trail forks under normal concurrent use").
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from portal.config import ConfigurationError
from portal.extensions import db
from portal.models import AuditEvent, Case, StaffUser
from portal.services import audit, case_actions
from tests.conftest import make_app

WRITERS = 4
CHANGES_PER_WRITER = 25
STATUSES = ("open", "waiting", "in_review", "open")


def _change_statuses(tmp: str, case_id: int, staff_id: int, start: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    """One staff member in their own process (like a gunicorn worker): change a status, commit,
    again. Each change reads the chain head and appends to it."""
    app = make_app(Path(tmp))
    with app.app_context():
        staff = db.session.get_one(StaffUser, staff_id)
        start.wait(30)  # type: ignore[attr-defined]
        for n in range(CHANGES_PER_WRITER):
            case = db.session.get_one(Case, case_id)
            case_actions.change_status(db.session, staff, case, STATUSES[n % len(STATUSES)])
            db.session.commit()
        db.engine.dispose()


def test_concurrent_writers_in_processes_keep_one_chain(
    tmp_path: Path,
    runner: FlaskCliRunner,
    create_staff: Callable[..., StaffUser],
    create_case: Callable[..., Case],
) -> None:
    """Before the chain was locked, writers that read the same head both appended to it and
    `audit verify` reported rows as broken though nothing was tampered with."""
    staff = create_staff("trust_safety")
    cases = [create_case() for _ in range(WRITERS)]
    before = db.session.scalar(select(func.count(AuditEvent.id)))
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    writers = [
        context.Process(target=_change_statuses, args=(str(tmp_path), case.id, staff.id, start))
        for case in cases
    ]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join(120)
    assert [writer.exitcode for writer in writers] == [0] * WRITERS

    db.session.expire_all()
    stored = db.session.scalar(select(func.count(AuditEvent.id)))
    assert stored == before + WRITERS * CHANGES_PER_WRITER  # nothing lost either
    result = runner.invoke(args=["audit", "verify"])
    assert (result.exit_code, result.output.strip()) == (0, "audit trail intact")


def test_a_fork_fails_at_its_commit(app: Flask, create_case: Callable[..., Case]) -> None:
    """Should a writer ever skip the lock, the unique sequence number refuses its event."""
    create_case()
    head = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert head is not None
    fork = AuditEvent(seq=head.seq, actor="system", action="forked", details={}, row_hash="0" * 64)
    db.session.add(fork)
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_the_chain_is_keyed(
    tmp_path: Path, runner: FlaskCliRunner, create_case: Callable[..., Case]
) -> None:
    """An edit re-hashed without the key (as anyone with write access to the database could do
    to a plain hash chain) is still found; and the chain only verifies under its own key."""
    create_case()
    create_case()
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    # The newest event, so that no later link gives the edit away: only the key can.
    first = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert first is not None
    forged_details = {**first.details, "reference": "OA-2026-999999"}
    forged_hash = audit._digest(
        b"guessed key",
        first.prev_hash,
        seq=first.seq,
        case_id=first.case_id,
        actor=first.actor,
        action=first.action,
        details=forged_details,
        created_at=first.created_at,
    )
    db.session.execute(
        text("UPDATE audit_events SET details = :d, row_hash = :h WHERE id = :id"),
        {"d": audit.json.dumps(forged_details), "h": forged_hash, "id": first.id},
    )
    db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert result.output.strip() == f"audit trail BROKEN at event(s): {first.id}"

    other_key = make_app(tmp_path, AUDIT_KEY="another key entirely")
    with other_key.app_context():
        assert list(audit.broken_links(db.session))  # every row: the key is part of the hash
        db.session.remove()


def test_anchor_detects_removal_of_the_newest_events(
    runner: FlaskCliRunner, create_staff: Callable[..., StaffUser], create_case: Callable[..., Case]
) -> None:
    staff = create_staff("trust_safety")
    case = create_case()
    case_actions.change_status(db.session, staff, case, "open")
    db.session.commit()
    printed = runner.invoke(args=["audit", "anchor"])
    assert printed.exit_code == 0
    line = printed.output.strip()
    anchor = audit.parse_anchor(line)
    assert line.startswith(f"audit-anchor seq={anchor.seq} hash={anchor.row_hash} at=")

    case_actions.change_status(db.session, staff, case, "waiting")
    db.session.commit()
    ok = runner.invoke(args=["audit", "verify", "--anchor", line])
    assert (ok.exit_code, ok.output.strip()) == (0, "audit trail intact and extends its anchor")

    # Whoever removes the newest events leaves an intact, shorter chain behind.
    db.session.execute(text("DELETE FROM audit_events WHERE seq >= :seq"), {"seq": anchor.seq})
    db.session.commit()
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    shorter = runner.invoke(args=["audit", "verify", "--anchor", line])
    assert shorter.exit_code == 1
    assert shorter.output.strip() == (
        f"audit trail does NOT match its anchor: the chain ends at event {anchor.seq - 1}, "
        f"before its anchor at event {anchor.seq} (newest events were removed)"
    )


def test_anchor_detects_a_rewritten_chain(
    runner: FlaskCliRunner, create_case: Callable[..., Case]
) -> None:
    create_case()
    line = runner.invoke(args=["audit", "anchor"]).output.strip()
    anchor = audit.parse_anchor(line)
    other = line.replace(f"hash={anchor.row_hash}", "hash=" + "ab" * 32)
    result = runner.invoke(args=["audit", "verify", "--anchor", other])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"audit trail does NOT match its anchor: event {anchor.seq} differs from the anchor"
    )


def test_a_malformed_anchor_is_a_usage_error(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["audit", "verify", "--anchor", "seq=3"])
    assert result.exit_code == 2
    assert "not an anchor line" in result.output


def test_production_refuses_to_start_without_an_audit_key(tmp_path: Path) -> None:
    unused = "sqlite://"  # the check comes before any database is opened
    with pytest.raises(ConfigurationError, match="PORTAL_AUDIT_KEY"):
        make_app(tmp_path, ENV="production", SQLALCHEMY_DATABASE_URI=unused)
    make_app(
        tmp_path,
        ENV="production",
        AUDIT_KEY="kept in the secrets store",
        RATELIMIT_STORAGE_URI="database://",
        SQLALCHEMY_DATABASE_URI=unused,
    )
