"""A staff member's day in a real headless Chromium: sign in with a TOTP code, open a case
from the inbox, answer it, and see the answer on the timeline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page

from portal.models import Case, StaffUser
from tests.e2e.pages import StaffPages
from tests.factories import STAFF_PASSWORD, unused_code
from tests.servers.browser import LiveServer


def test_sign_in_open_a_case_and_reply(
    page: Page,
    live_server: LiveServer,
    create_staff: Callable[..., StaffUser],
    create_case: Callable[..., Case],
    tmp_path: Path,
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
    assert page.get_by_text("Reply sent.").is_visible()
    # No SMTP server in this test: the mail went to the file outbox.
    assert list((tmp_path / "outbox").glob("*-reply.eml"))


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
