"""Filing an appeal in a real headless Chromium and confirming it from the mailed link."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from portal.extensions import db
from portal.models import Appeal, Attachment, Case, Message, StaffUser
from portal.models.base import utcnow
from tests.appeals_helpers import SUBJECT, decided_case, link_in
from tests.e2e.pages import AppealPages
from tests.servers.browser import LiveServer
from tests.servers.smtp import SmtpServer


@pytest.fixture
def app_config(smtp: SmtpServer) -> dict[str, Any]:
    return {"MAIL_SERVER": smtp.host, "MAIL_PORT": smtp.port}


def test_file_an_appeal_and_confirm_it_from_the_mail(
    page: Page,
    live_server: LiveServer,
    smtp: SmtpServer,
    create_case: Callable[..., Case],
    create_staff: Callable[..., StaffUser],
    tmp_path: Path,
) -> None:
    decider = create_staff("trust_safety")
    case = decided_case(create_case, decider, decided_at=utcnow() - timedelta(days=12))
    reference, case_id = case.reference or "", case.id
    evidence = tmp_path / "evidence.pdf"
    evidence.write_bytes(b"%PDF-1.4\n%%EOF\n")

    appellant = AppealPages(page, live_server.url).open_form()
    appellant.appeal(
        reference=reference.lower(),
        email=SUBJECT,
        role_label="The case is about me (the person investigated)",
        reasons="The diffs cited were made by a different account.",
        files=[str(evidence)],
    )
    assert appellant.heading() == "Check your e-mail"

    (mail,) = smtp.wait_for(1, timeout=20)
    assert mail.rcpt_tos == [SUBJECT]
    assert mail.message()["Subject"] == f"[{reference}] Please confirm your appeal"
    # The link names the configured public address; the path is what the browser follows.
    appellant.follow_link(urlsplit(link_in(mail.data)).path)
    assert appellant.heading() == "Confirm your appeal"
    appellant.confirm()
    assert appellant.heading() == "Thank you: your appeal has been sent to its reviewers"
    appeal_reference = appellant.reference()
    assert re.fullmatch(r"OA-\d{4}-\d{6}", appeal_reference)

    # Sent after the response has gone out: allow for a loaded machine.
    filed = smtp.wait_for(2, timeout=20)[-1]
    assert appeal_reference in filed.message()["Subject"]
    db.session.expire_all()
    appeal = db.session.scalars(select(Appeal)).one()
    appeal_case = db.session.get_one(Case, appeal.appeal_case_id)
    assert (appeal_case.reference, appeal_case.appeal_of_id) == (appeal_reference, case_id)
    first = db.session.scalars(select(Message).where(Message.case_id == appeal_case.id)).first()
    assert first is not None
    (attachment,) = db.session.scalars(select(Attachment).where(Attachment.message_id == first.id))
    assert (attachment.filename, attachment.content_type) == ("evidence.pdf", "application/pdf")

    # The link works once.
    appellant.follow_link(urlsplit(link_in(mail.data)).path)
    assert appellant.heading() == "This link has been used already"


def test_form_errors_are_shown_beside_their_fields(page: Page, live_server: LiveServer) -> None:
    appellant = AppealPages(page, live_server.url).open_form()
    appellant.appeal(
        reference="12345",
        email="subject@example.net",
        role_label="I asked for the office action (the requester)",
        reasons="",
    )
    assert "OA-2026-000123" in appellant.error_beside("case_reference")
    assert "inappropriate" in appellant.error_beside("reasons")
    assert page.get_by_role("alert").first.is_visible()
    assert page.get_by_label("Your e-mail address").input_value() == "subject@example.net"
