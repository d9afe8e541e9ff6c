"""A staff member's day in a real headless Chromium: sign in with a TOTP code, open a case
from the inbox, answer it, and see the answer on the timeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page

from portal.models import Case, StaffUser
from tests.e2e.pages import StaffPages
from tests.factories import STAFF_PASSWORD, unused_code
from tests.servers.browser import LiveServer
from tests.servers.smtp import SmtpServer


@pytest.fixture
def app_config(smtp: SmtpServer) -> dict[str, Any]:
    return {"MAIL_SERVER": smtp.host, "MAIL_PORT": smtp.port}


def test_sign_in_open_a_case_and_reply(
    page: Page,
    live_server: LiveServer,
    create_staff: Callable[..., StaffUser],
    create_case: Callable[..., Case],
    smtp: SmtpServer,
) -> None:
    agent = create_staff("trust_safety", name="Agent")
    case = create_case("global_ban", summary="Coordinated harassment on three wikis")
    staff = StaffPages(page, live_server.url)

    staff.sign_in(agent.email, STAFF_PASSWORD, unused_code(agent))
    assert staff.heading() == "Inbox"
    staff.open_case(case.reference or "")
    assert case.reference in staff.heading()
    assert "Coordinated harassment on three wikis" in staff.timeline_text()

    staff.reply("Thank you for your report. We are reviewing it.")
    timeline = staff.timeline_text()
    assert "Thank you for your report. We are reviewing it." in timeline
    assert "Sent by us" in timeline
    assert page.get_by_text("Reply saved and queued").is_visible()
    (sent,) = smtp.wait_for(1)
    assert sent.message()["Subject"].startswith(f"Re: [{case.reference}]")
    assert "We are reviewing it." in sent.message().get_body(("plain",)).get_content()


def test_wrong_code_is_refused_calmly(
    page: Page, live_server: LiveServer, create_staff: Callable[..., StaffUser]
) -> None:
    agent = create_staff("legal")
    staff = StaffPages(page, live_server.url)
    staff.sign_in(
        agent.email, STAFF_PASSWORD, "000000" if unused_code(agent) != "000000" else "111111"
    )
    assert page.get_by_role("alert").inner_text().strip() == (
        "The e-mail address, password or code is not right."
    )
