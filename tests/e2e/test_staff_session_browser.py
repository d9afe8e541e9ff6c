"""Staff sessions in a real headless Chromium: a cookie copied before signing out opens nothing
after it, a role refusal is a staff page with a way back, and changing one's password ends the
other sessions and keeps this one."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page

from portal.extensions import db
from portal.models import StaffUser
from portal.signin import SessionEnd
from tests.e2e.pages import StaffPages
from tests.factories import STAFF_PASSWORD, unused_code
from tests.servers.browser import LiveServer


@pytest.fixture
def second_page(browser: Browser) -> Iterator[Page]:
    """Another browser (its own cookie jar), e.g. the staff member's other computer."""
    context = browser.new_context()
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_a_cookie_copied_before_signing_out_opens_nothing_after(
    page: Page,
    second_page: Page,
    live_server: LiveServer,
    create_staff: Callable[..., StaffUser],
) -> None:
    agent = create_staff("legal")
    staff = StaffPages(page, live_server.url)
    staff.sign_in(agent.email, STAFF_PASSWORD, unused_code(agent))
    assert staff.heading() == "Inbox"
    cookies = page.context.cookies()  # copied to the other browser, as a thief would
    second_page.context.add_cookies(cookies)  # type: ignore[arg-type]
    second_page.goto(f"{live_server.url}/staff/")
    assert StaffPages(second_page, live_server.url).heading() == "Inbox"

    page.get_by_role("button", name="Sign out").click()
    assert staff.heading() == "Staff sign-in"
    second_page.goto(f"{live_server.url}/staff/")
    assert StaffPages(second_page, live_server.url).heading() == "Staff sign-in"
    assert second_page.get_by_text(SessionEnd.ENDED.value).is_visible()


def test_a_role_refusal_leads_back_to_the_inbox(
    page: Page, live_server: LiveServer, create_staff: Callable[..., StaffUser]
) -> None:
    reviewer = create_staff("appeals_reviewer")
    staff = StaffPages(page, live_server.url)
    staff.sign_in(reviewer.email, STAFF_PASSWORD, unused_code(reviewer))
    page.goto(f"{live_server.url}/staff/admin/canned")
    assert staff.heading() == "This page is not open to your role"
    page.get_by_role("link", name="Back to the inbox").click()
    assert staff.heading() == "Inbox"


def test_changing_ones_password_keeps_this_session_and_ends_the_other(
    page: Page,
    second_page: Page,
    live_server: LiveServer,
    create_staff: Callable[..., StaffUser],
) -> None:
    agent = create_staff("trust_safety")
    here, there = StaffPages(page, live_server.url), StaffPages(second_page, live_server.url)
    here.sign_in(agent.email, STAFF_PASSWORD, unused_code(agent))
    db.session.refresh(agent)
    there.sign_in(agent.email, STAFF_PASSWORD, unused_code(agent))
    assert here.heading() == there.heading() == "Inbox"

    page.get_by_role("link", name="Password").click()
    page.get_by_label("Current password").fill(STAFF_PASSWORD)
    page.get_by_label("New password (required)", exact=True).fill("a brand new passphrase")
    page.get_by_label("New password again").fill("a brand new passphrase")
    page.get_by_role("button", name="Change password").click()
    assert here.heading() == "Inbox"
    assert page.get_by_text("Every other session of yours has ended.", exact=False).is_visible()

    second_page.reload()
    assert there.heading() == "Staff sign-in"
