"""The request form in a real headless Chromium: what a person filing a request sees."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page

from tests.e2e.pages import RequestFormPage
from tests.servers.browser import LiveServer


def test_file_a_global_ban_request(page: Page, live_server: LiveServer) -> None:
    form = RequestFormPage(page, live_server.url).open()
    form.choose_action("Global ban")
    assert not form.sees("Scope of the event ban")
    form.write_summary("Harassment of several editors on three wikis")
    assert form.word_count_text() == "7 of 300 words"
    form.give_evidence("https://en.wikipedia.org/w/index.php?diff=1")
    form.give_prior_attempts("https://en.wikipedia.org/wiki/Wikipedia:ANI")
    form.give_email("reporter@example.org")
    form.send()
    assert re.fullmatch(r"OA-\d{4}-\d{6}", form.reference())


def test_errors_are_shown_beside_fields_and_input_is_kept(
    page: Page, live_server: LiveServer
) -> None:
    form = RequestFormPage(page, live_server.url).open()
    form.choose_action("Global ban")
    form.write_summary("A summary I do not want to type twice")
    form.give_evidence("javascript:alert(1)")
    form.give_email("not an address")
    form.send()
    assert "must start with https://" in form.error_beside("evidence_urls")
    assert form.error_beside("requester_email")
    assert page.get_by_role("alert").first.is_visible()
    assert page.get_by_label("Summary of your reasons").input_value() == (
        "A summary I do not want to type twice"
    )


def test_child_protection_hides_what_could_slow_it_down(
    page: Page, live_server: LiveServer
) -> None:
    form = RequestFormPage(page, live_server.url).open()
    form.choose_action("Child protection")
    assert not form.sees("Local community processes")
    assert page.locator("[data-show-for=child_protection]").is_visible()
    form.write_summary("An adult is grooming a young editor " * 80)
    assert "of 300" not in form.word_count_text(), "no word limit for child protection"
    form.give_email("worried@example.org")
    form.send()
    assert form.reference().startswith("OA-")


def test_event_ban_shows_its_scope_fields(page: Page, live_server: LiveServer) -> None:
    form = RequestFormPage(page, live_server.url).open()
    form.choose_action("Event ban")
    assert form.sees("Scope of the event ban")


@pytest.mark.parametrize(
    ("action", "address"),
    [
        ("Child protection", "用户@例子.广告"),
        ("Global ban", "josé@example.com"),
        ("Global ban", "jose@exämple.com"),
    ],
)
def test_an_internationalised_address_files_the_request(
    page: Page, live_server: LiveServer, action: str, address: str
) -> None:
    """Issue 10: these addresses made the form answer 500 (for a child protection report too);
    what the browser sends for them (Chromium may send the domain in A-labels) must file."""
    form = RequestFormPage(page, live_server.url).open()
    form.choose_action(action)
    form.write_summary("An adult is pressuring a young editor to meet in person")
    if action != "Child protection":
        form.give_prior_attempts("https://en.wikipedia.org/wiki/Wikipedia:ANI")
    form.give_email(address)
    form.send()
    assert re.fullmatch(r"OA-\d{4}-\d{6}", form.reference())
