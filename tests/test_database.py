"""Past one machine: what an operations team relies on from the database, on both databases.

Issue: "PostgreSQL as a first-class database, and a deployment an operations team can run".
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Case, StaffUser
from portal.models.base import utcnow
from portal.policy.actions import ActionType
from portal.policy.references import format_reference
from portal.services.cases import RequestSubmission, open_request
from tests.conftest import make_app
from tests.factories import Auth
from tests.servers.postgres import PostgresServer

FILERS = 3
CASES_PER_FILER = 10


def _file_requests(tmp: str, number: int, start: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    """One web worker (its own process and connection pool) filing requests, one per commit."""
    app = make_app(Path(tmp))
    with app.app_context():
        start.wait(30)  # type: ignore[attr-defined]
        for n in range(CASES_PER_FILER):
            open_request(
                db.session,
                RequestSubmission(
                    action=ActionType.GLOBAL_BAN,
                    summary="Harassment across wikis",
                    requester_email=f"filer{number}-{n}@example.org",
                ),
            )
            db.session.commit()
        db.engine.dispose()


def test_concurrent_filing_gives_unique_consecutive_references(tmp_path: Path, app: Flask) -> None:
    """Several workers filing at once never share a reference; with no filing failing, none
    is skipped either (a filing rolled back after it was numbered leaves a gap on PostgreSQL,
    see the README)."""
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    filers = [
        context.Process(target=_file_requests, args=(str(tmp_path), number, start))
        for number in range(FILERS)
    ]
    for filer in filers:
        filer.start()
    start.set()
    for filer in filers:
        filer.join(120)
    assert [filer.exitcode for filer in filers] == [0] * FILERS

    cases = db.session.scalars(select(Case).order_by(Case.id)).all()
    assert len(cases) == FILERS * CASES_PER_FILER
    assert [case.id for case in cases] == list(range(1, len(cases) + 1))
    assert [case.reference for case in cases] == [
        format_reference(case.created_at.year, case.id) for case in cases
    ]


@pytest.mark.postgresql_only
def test_a_database_restart_costs_no_request_a_500(
    client: FlaskClient,
    auth: Auth,
    create_staff: Callable[..., StaffUser],
    create_case: Callable[..., Case],
    postgresql: PostgresServer,
) -> None:
    """Seen: after a PostgreSQL restart each worker answered one 500, from a pooled connection
    the server had closed. The pool now checks a connection before handing it out."""
    staff = create_staff("trust_safety")
    case = create_case()
    assert auth.login(staff).status_code == 302
    assert client.get(f"/staff/cases/{case.id}").status_code == 200  # the pool holds one now

    db.session.close()
    postgresql.restart()

    assert client.get(f"/staff/cases/{case.id}").status_code == 200
    assert client.get("/staff/").status_code == 200


def test_a_failed_statement_carries_no_values(app: Flask) -> None:
    """A refused INSERT's message (which the bridge and the error log print) names the
    statement, never its values: they are mail bodies, addresses and password hashes."""
    now = utcnow()
    db.session.add(Case(reference="OA-2026-000001", created_at=now, updated_at=now))
    db.session.commit()
    db.session.add(
        Case(reference="OA-2026-000001", summary="zebra-42 secret", created_at=now, updated_at=now)
    )
    with pytest.raises(IntegrityError) as refused:
        db.session.commit()
    db.session.rollback()
    assert "zebra-42" not in str(refused.value)
    assert "parameters hidden" in str(refused.value)
