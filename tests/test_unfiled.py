"""Issue 10, section 2: a message the bridge cannot file is always visible to staff.

Seen: the mail bridge stored mail it could not file on any case, and no staff page showed it.
Now ``/staff/unfiled`` lists it to whoever would see the inquiry it would have opened (the
queue of the mailbox it came to), offers the raw message as a download, and files it as a new
inquiry in that queue.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select

import mailbridge.ingest
from mailbridge.threads import decide
from portal.config import get_settings
from portal.extensions import db
from portal.models import AuditEvent, Case, Message, StaffUser
from portal.services import unfiled
from portal.services.unfiled import UnfiledError
from portal.storage import BlobStore
from tests.conftest import csrf_token, make_app
from tests.factories import Auth
from tests.mailbridge_helpers import append_all, inbound, make_mail, sync
from tests.servers.fixtures import ImapAccount


@pytest.fixture
def poison(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threading raises for one message, as a bug tripped by one odd message would."""

    def failing_decide(mail: Any, *args: Any, **kwargs: Any) -> Any:
        if mail.subject and "poison" in mail.subject:
            raise ValueError("cannot thread this one")
        return decide(mail, *args, **kwargs)

    monkeypatch.setattr(mailbridge.ingest, "decide", failing_decide)


@pytest.fixture
def app_config(imap_account: ImapAccount) -> dict[str, Any]:
    return {"IMAP_CA_URL": imap_account.url()}


def test_mail_the_bridge_cannot_file_is_listed_for_staff(
    runner: FlaskCliRunner,
    imap_account: ImapAccount,
    poison: None,
    auth: Auth,
    client: FlaskClient,
    create_staff: Callable[..., StaffUser],
) -> None:
    append_all(
        imap_account,
        [
            make_mail("A poison report about مريم", sender="José <josé@example.com>"),
            make_mail("An ordinary report"),
        ],
    )
    assert sync(runner).exit_code == 0
    unfiled, filed = inbound()
    assert unfiled.case_id is None
    assert filed.case_id is not None

    auth.login(create_staff("trust_safety"))
    inbox = client.get("/staff/").get_data(as_text=True)
    assert 'href="/staff/unfiled"' in inbox
    assert "1 message could not be filed" in inbox
    page = client.get("/staff/unfiled").get_data(as_text=True)
    assert "A poison report about مريم" in page
    assert "josé@example.com" in page
    assert "could not be filed automatically (ValueError)" in page
    assert "An ordinary report" not in page


def unfiled_row(mailbox: str, subject: str, raw: bytes = b"Subject: x\r\n\r\nbody\r\n") -> Message:
    stored = BlobStore(get_settings().blob_dir).put(raw)
    message = Message(
        case_id=None,
        direction="inbound",
        channel="mail",
        mailbox=mailbox,
        sender="\u200fשרה@example.co.il",
        subject=subject,
        raw_sha256=stored.sha256,
        raw_size=stored.size,
        flag_reason="could not be filed automatically (ValueError); see the raw message",
    )
    db.session.add(message)
    db.session.commit()
    return message


@pytest.fixture
def rows(app: Flask) -> dict[str, Message]:
    return {
        "ca": unfiled_row("ca", "Unfiled in ca@"),
        "appeals": unfiled_row("appeals", "Unfiled in appeals@"),
    }


# Whoever would see the inquiry the message would have opened: Trust & Safety and admins the
# ca@ queue; Trust & Safety, appeal reviewers and admins the appeals@ queue; Legal neither.
SEES = {
    "trust_safety": {"ca", "appeals"},
    "appeals_reviewer": {"appeals"},
    "admin": {"ca", "appeals"},
    "legal": set(),
}


@pytest.mark.parametrize("role", sorted(SEES))
def test_unfiled_mail_is_shown_to_the_staff_of_its_queue(
    auth: Auth,
    client: FlaskClient,
    create_staff: Callable[..., StaffUser],
    rows: dict[str, Message],
    role: str,
) -> None:
    auth.login(create_staff(role))
    ids = {name: row.id for name, row in rows.items()}
    response = client.get("/staff/unfiled")
    if not SEES[role]:
        assert response.status_code == 403
        assert 'href="/staff/unfiled"' not in client.get("/staff/").get_data(as_text=True)
    else:
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        for name in rows:
            assert (f"Unfiled in {name}@" in page) == (name in SEES[role]), (role, name)
    token = csrf_token(client.get("/staff/"))
    for name, row_id in ids.items():
        raw = client.get(f"/staff/unfiled/{row_id}/raw")
        filed = client.post(f"/staff/unfiled/{row_id}/file", data={"csrf_token": token})
        if name in SEES[role]:
            assert raw.status_code == 200
            assert raw.headers["Content-Disposition"].startswith("attachment")
            assert raw.data == b"Subject: x\r\n\r\nbody\r\n"
            assert filed.status_code == 303
        else:
            # Hidden: what a message that does not exist gets.
            assert raw.status_code == client.get("/staff/unfiled/999999/raw").status_code
            assert filed.status_code in (403, 404)


def test_filing_opens_an_inquiry_in_the_queue_of_its_mailbox(
    auth: Auth,
    client: FlaskClient,
    create_staff: Callable[..., StaffUser],
    rows: dict[str, Message],
) -> None:
    reviewer = create_staff("appeals_reviewer")
    auth.login(reviewer)
    row_id = rows["appeals"].id
    response = client.post(
        f"/staff/unfiled/{row_id}/file", data={"csrf_token": csrf_token(client.get("/staff/"))}
    )
    assert response.status_code == 303
    db.session.expire_all()
    message = db.session.get_one(Message, row_id)
    assert message.case_id is not None
    case = db.session.get_one(Case, message.case_id)
    assert (case.kind, case.team) == ("inquiry", "appeals")
    assert response.headers["Location"].endswith(f"/staff/cases/{case.id}")
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "unfiled.filed")).one()
    assert event.details == {"message_id": row_id}
    assert event.case_id == case.id
    # Filed once: it has left the list, and filing it again is refused like a missing one.
    assert "Unfiled in appeals@" not in client.get("/staff/unfiled").get_data(as_text=True)
    again = client.post(
        f"/staff/unfiled/{row_id}/file", data={"csrf_token": csrf_token(client.get("/staff/"))}
    )
    assert again.status_code == 404


def _file_from_another_process(
    tmp: str, message_id: int, staff_id: int, barrier: Any, results: Any
) -> None:
    """One member of staff pressing *File* in their own gunicorn worker."""
    app = make_app(Path(tmp))
    with app.app_context():
        staff = db.session.get_one(StaffUser, staff_id)
        message = unfiled.get_unfiled(db.session, staff, message_id)
        assert message is not None
        barrier.wait(timeout=60)
        try:
            case_id = unfiled.file_as_inquiry(db.session, staff, message)
            db.session.commit()
            results.put(("filed", case_id))
        except UnfiledError:
            db.session.rollback()
            results.put(("refused", None))
        except Exception as exc:  # reported to the test, not lost in a child's stderr
            results.put(("failed", repr(exc)))


def test_two_staff_filing_one_message_at_once_open_one_case(
    tmp_path: Path, create_staff: Callable[..., StaffUser], rows: dict[str, Message]
) -> None:
    staff_ids = [create_staff("trust_safety").id, create_staff("admin").id]
    message_id = rows["ca"].id
    cases_before = db.session.scalar(select(func.count(Case.id)))
    db.session.commit()
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(
            target=_file_from_another_process,
            args=(str(tmp_path), message_id, staff_id, barrier, results),
        )
        for staff_id in staff_ids
    ]
    for worker in workers:
        worker.start()
    outcomes = sorted([results.get(timeout=120), results.get(timeout=120)], key=str)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    (filed, case_id), (refused, _) = outcomes
    assert (filed, refused) == ("filed", "refused")
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Case.id))) == (cases_before or 0) + 1
    assert db.session.get_one(Message, message_id).case_id == case_id
