"""The public appeal form at /appeals/new (issue 5): its contract, its errors, and the one
neutral answer that never says whether a case exists or who is party to it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.config import get_settings
from portal.extensions import db
from portal.models import Appeal, Case, Job, StaffUser
from portal.models.base import utcnow
from portal.policy.mail import MailPurpose
from portal.services import appeals as appeals_service
from portal.storage import BlobStore
from tests.appeals_helpers import (
    REQUESTER,
    SUBJECT,
    appeal_form,
    decided_case,
    file_on_web,
    outbox,
    strip_csrf,
    text_of,
)
from tests.conftest import csrf_token, post_form, work_outbox
from tests.servers.smtp import SmtpServer

ROOT = Path(__file__).resolve().parent.parent

URL = "/appeals/new"


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {
        "APPEAL_RATE_LIMIT": "1000 per hour",
        "APPEAL_ADDRESS_RATE_LIMIT": "1000 per day",
        "APPEAL_PAGE_RATE_LIMIT": "1000 per hour",
    }


@pytest.fixture
def decider(create_staff: Callable[..., StaffUser]) -> StaffUser:
    return create_staff("trust_safety")


@pytest.fixture
def case(create_case: Callable[..., Case], decider: StaffUser) -> Case:
    """Decided ten days ago: well within the six months."""
    return decided_case(create_case, decider, decided_at=utcnow() - timedelta(days=10))


def test_the_form_has_its_contract_fields(client: FlaskClient) -> None:
    html = client.get(URL).get_data(as_text=True)
    for name in (
        "case_reference",
        "appellant_email",
        "appellant_role",
        "reasons",
        "details",
        "attachments",
        "website",
    ):
        assert f'name="{name}"' in html, name
    assert 'value="requester"' in html
    assert 'value="subject"' in html
    assert 'enctype="multipart/form-data"' in html
    assert '<label for="reasons">' in html
    assert 'class="honeypot" aria-hidden="true"' in html


def test_form_errors_are_shown_beside_their_fields_and_input_is_kept(client: FlaskClient) -> None:
    response = post_form(
        client,
        URL,
        appeal_form(
            case_reference="123",
            appellant_email="not an address",
            appellant_role="",
            reasons="",
            details="Kept as typed",
        ),
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    for field in ("case_reference", "appellant_email", "appellant_role", "reasons"):
        assert f'id="{field}-error"' in html, field
    assert "A reference looks like OA-2026-000123." in html
    assert 'role="alert"' in html  # the error summary
    assert "Kept as typed" in html
    assert outbox() == []


def test_the_honeypot_refuses_robots(client: FlaskClient, case: Case) -> None:
    response = post_form(client, URL, appeal_form(case, website="http://spam.example"))
    assert response.status_code == 400
    assert outbox() == []


def test_an_expired_csrf_token_keeps_what_was_typed(client: FlaskClient) -> None:
    client.get(URL)
    response = client.post(URL, data=appeal_form(reasons="Typed before lunch", csrf_token="x"))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Your appeal was not sent yet" in html
    assert "Typed before lunch" in html


def answer(client: FlaskClient, data: dict[str, Any], **kwargs: Any) -> tuple[int, bytes, str]:
    """The POST's status, body and redirect target; the page it leads to, CSRF removed."""
    page = client.get(URL)
    response = client.post(URL, data={**data, "csrf_token": csrf_token(page)}, **kwargs)
    response.close()
    work_outbox(client.application)  # the delivery worker runs the filing the request stored
    followed = client.get(response.headers.get("Location", URL))
    return response.status_code, response.get_data(), strip_csrf(followed.get_data(as_text=True))


def test_unknown_reference_wrong_address_non_party_and_party_get_the_same_answer(
    client: FlaskClient,
    case: Case,
    create_case: Callable[..., Case],
    decider: StaffUser,
) -> None:
    too_late = decided_case(
        create_case,
        decider,
        requester="late.requester@example.org",
        subject="late.subject@example.net",
        decided_at=utcnow() - timedelta(days=400),
    )
    other = decided_case(
        create_case, decider, requester="other@example.org", subject="other.subject@example.net"
    )
    answers = {
        "unknown reference": answer(client, appeal_form(case_reference="OA-2026-999999")),
        "wrong address": answer(client, appeal_form(case, appellant_email="guess@example.com")),
        "party of another case": answer(
            client, appeal_form(case, appellant_email="other.subject@example.net")
        ),
        "requester claiming to be the subject": answer(
            client, appeal_form(case, appellant_email=REQUESTER)
        ),
        "party, eligible": answer(client, appeal_form(case)),
        "party, refused": answer(
            client, appeal_form(too_late, appellant_email="late.subject@example.net")
        ),
    }
    statuses = {name: status for name, (status, _, _) in answers.items()}
    assert set(statuses.values()) == {303}, statuses
    first = next(iter(answers.values()))
    for name, seen in answers.items():
        assert seen == first, f"{name} is told something different"
    assert "Check your e-mail" in first[2]

    # Only the two parties were written to, each at the address on record.
    confirmations = outbox(MailPurpose.APPEAL_CONFIRMATION)
    refusals = outbox(MailPurpose.APPEAL_REFUSAL)
    assert [m.recipients for m in confirmations] == [[SUBJECT]]
    assert [m.recipients for m in refusals] == [["late.subject@example.net"]]
    assert other.id not in {m.case_id for m in outbox()}


def test_the_filing_is_looked_at_only_after_the_answer_has_gone_out(
    client: FlaskClient, case: Case
) -> None:
    """Same bytes and same time: no case is even looked up before the response is sent; the
    request only stores the filing for the delivery worker."""
    page = client.get(URL)
    response = client.post(URL, data={**appeal_form(case), "csrf_token": csrf_token(page)})
    assert response.status_code == 303
    assert outbox() == []
    assert db.session.scalars(select(Appeal)).all() == []
    (job,) = db.session.scalars(select(Job)).all()
    assert (job.kind, job.state) == ("appeal.file", "pending")
    work_outbox(client.application)
    assert [m.recipients for m in outbox(MailPurpose.APPEAL_CONFIRMATION)] == [[SUBJECT]]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({"decision": None}, "no decision yet"),
        ({"action": "dmca"}, "counter-notice"),
        ({"decided_days_ago": 190}, "can no longer be appealed"),
        (
            {"action": "event_ban", "part_of_global_ban": True, "scope_until": "+"},
            "part of a global ban",
        ),
    ],
)
def test_refusals_that_would_reveal_the_case_go_by_mail_to_the_party(
    client: FlaskClient,
    create_case: Callable[..., Case],
    decider: StaffUser,
    setup: dict[str, Any],
    expected: str,
) -> None:
    if setup.get("decision", "granted") is None:
        case = create_case(requester_email=REQUESTER)
    else:
        fields: dict[str, Any] = {}
        if setup.get("part_of_global_ban"):
            fields = {
                "part_of_global_ban": True,
                "scope_until": (utcnow() + timedelta(days=300)).date(),
            }
        case = decided_case(
            create_case,
            decider,
            action=setup.get("action", "global_ban"),
            subject=None,
            decided_at=utcnow() - timedelta(days=setup.get("decided_days_ago", 5)),
            **fields,
        )
    status, _, page = answer(
        client, appeal_form(case, appellant_email=REQUESTER, appellant_role="requester")
    )
    assert status == 303
    assert expected not in page
    assert "Check your e-mail" in page
    (mail,) = outbox(MailPurpose.APPEAL_REFUSAL)
    assert mail.recipients == [REQUESTER]
    assert expected in " ".join(text_of(mail.raw).split())
    appeal = db.session.scalars(select(Appeal)).one()
    assert (appeal.state, appeal.reasons) == ("refused", None)  # the text is not kept


def test_the_link_goes_to_the_address_on_record_not_the_variant_typed(
    client: FlaskClient, case: Case
) -> None:
    answer(client, appeal_form(case, appellant_email="Subject+Appeal@Example.NET"))
    (mail,) = outbox(MailPurpose.APPEAL_CONFIRMATION)
    assert mail.recipients == [SUBJECT]
    assert mail.case_id == case.id  # on the appealed case's timeline, for its team to see
    text = text_of(mail.raw)
    assert "the person the case is about" in text
    # A stranger's words are never relayed to the party: the link, not the reasons.
    assert "The evidence was misread" not in text


def test_the_requester_is_matched_by_their_reporter_address(
    client: FlaskClient, case: Case
) -> None:
    answer(client, appeal_form(case, appellant_email=REQUESTER, appellant_role="requester"))
    (mail,) = outbox(MailPurpose.APPEAL_CONFIRMATION)
    assert mail.recipients == [REQUESTER]


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ([("virus.exe", b"MZ\x90\x00")], "is not a PDF, PNG, JPEG or plain text"),
        ([("image.pdf", PNG)], "is not a PDF, PNG, JPEG or plain text"),
        ([("binary.txt", b"abc\0def")], "is not a PDF, PNG, JPEG or plain text"),
        ([("big.pdf", b"%PDF-" + b"x" * (10 * 1024 * 1024))], "larger than 10 MB"),
        ([(f"n{i}.txt", b"note") for i in range(6)], "at most 5 files"),
    ],
)
def test_attachments_are_limited_by_type_size_and_number(
    client: FlaskClient, case: Case, files: list[tuple[str, bytes]], error: str
) -> None:
    data = appeal_form(case)
    data["attachments"] = [(io.BytesIO(content), name) for name, content in files]
    response = post_form(client, URL, data, content_type="multipart/form-data")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="attachments-error"' in html
    assert error in html
    assert outbox() == []


def test_accepted_attachments_are_stored_by_hash_for_the_appeal(
    client: FlaskClient, case: Case
) -> None:
    data = appeal_form(case)
    data["attachments"] = [
        (io.BytesIO(PDF), "evidence.pdf"),
        (io.BytesIO(PNG), "../../screenshot.png"),
        (io.BytesIO("Notes, naïve café".encode()), "notes.txt"),
    ]
    response = file_on_web(client, data, content_type="multipart/form-data")
    assert response.status_code == 303
    appeal = db.session.scalars(select(Appeal)).one()
    assert [(a["filename"], a["content_type"]) for a in appeal.attachments] == [
        ("evidence.pdf", "application/pdf"),
        ("screenshot.png", "image/png"),
        ("notes.txt", "text/plain"),
    ]
    store = BlobStore(get_settings().blob_dir)
    assert store.read(appeal.attachments[0]["sha256"]) == PDF


def test_a_filing_survives_the_web_worker_that_took_it(
    tmp_path: Path, client: FlaskClient, case: Case, smtp: SmtpServer
) -> None:
    """Seen: the checks ran in a thread of the web worker after it answered, so a worker
    killed then lost a filing the person had been told about. Now the filing is stored
    before the answer: any delivery worker, in another process, files and answers it."""
    data = appeal_form(case)
    data["attachments"] = [(io.BytesIO(PDF), "evidence.pdf")]
    page = client.get(URL)
    response = client.post(
        URL,
        data={**data, "csrf_token": csrf_token(page)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    staging = Path(get_settings().blob_dir) / ".staging"
    assert len(list(staging.iterdir())) == 1  # the document waits beside the job

    # The web worker is gone; the delivery worker is a process of its own.
    worker = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "outbox", "flush"],
        env={
            **os.environ,
            "PORTAL_DATABASE_URL": get_settings().database_url,
            "PORTAL_SECRET_KEY": str(client.application.secret_key),
            "PORTAL_BLOB_DIR": str(get_settings().blob_dir),
            "PORTAL_MAIL_SERVER": smtp.host,
            "PORTAL_MAIL_PORT": str(smtp.port),
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stderr
    assert "jobs: 1 done, 0 failed" in worker.stdout
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == [SUBJECT]
    assert "Please confirm your appeal" in mail.message()["Subject"]
    db.session.expire_all()
    appeal = db.session.scalars(select(Appeal)).one()
    assert [a["filename"] for a in appeal.attachments] == ["evidence.pdf"]
    assert list(staging.iterdir()) == []  # kept in the blob store now, not twice
    job = db.session.scalars(select(Job)).one()
    assert (job.state, job.payload) == ("done", {})  # what was typed is not kept twice


def test_a_failing_filing_is_retried_not_lost(
    client: FlaskClient, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = client.get(URL)
    client.post(URL, data={**appeal_form(case), "csrf_token": csrf_token(page)})

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(appeals_service, "file_appeal", broken)
    ran = work_outbox(client.application)
    assert (ran.jobs.done, ran.jobs.failed) == (0, 0)
    job = db.session.scalars(select(Job)).one()
    assert (job.state, job.attempts) == ("pending", 1)
    assert "the database went away" in (job.last_error or "")

    monkeypatch.undo()
    job.next_attempt_at = utcnow()
    db.session.commit()
    assert work_outbox(client.application).jobs.done == 1
    assert [m.recipients for m in outbox(MailPurpose.APPEAL_CONFIRMATION)] == [[SUBJECT]]
