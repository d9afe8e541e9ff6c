"""Issue 10: pages stay usable whatever arrives. The case page shows at most 1 MB of a message's
body and offers the full text as a download; the raw message (kept for every mail, and the only
way to read one too large to parse) is a download too. Downloads follow the case's access rules.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from portal.config import get_settings
from portal.display import BODY_DISPLAY_MAX_BYTES, body_to_show
from portal.extensions import db
from portal.models import Case, Message, StaffUser
from portal.storage import BlobStore
from tests.factories import Auth

LINE = "Diff https://en.wikipedia.org/wiki/Special:Diff/1 — déjà vu, ünïcödé.\n"


@pytest.fixture
def agent(create_staff: Callable[..., StaffUser]) -> StaffUser:
    return create_staff("trust_safety")


def mail_on(case: Case, **fields: object) -> Message:
    message = Message(
        case_id=case.id,
        direction="inbound",
        channel="mail",
        sender="reporter@example.net",
        mailbox="ca",
        **fields,
    )
    db.session.add(message)
    db.session.commit()
    return message


# -- the rule ---------------------------------------------------------------------------------


def test_a_body_within_the_limit_is_shown_whole_and_html_first() -> None:
    shown = body_to_show("text", "<p>html</p>", limit=100)
    assert (shown.text, shown.html, shown.cut) == (None, "<p>html</p>", False)
    assert body_to_show("text", None, limit=100).text == "text"
    assert body_to_show(None, None, limit=100).text == ""


def test_a_long_body_is_cut_at_the_limit_in_utf8_bytes_never_mid_character() -> None:
    text = "é" * 100  # 200 bytes
    shown = body_to_show(text, None, limit=51)
    assert shown.cut
    assert shown.text == "é" * 25
    assert len(shown.text.encode()) <= 51


def test_long_html_gives_way_to_the_plain_text() -> None:
    """Cut HTML would be cut markup; the text part says the same."""
    shown = body_to_show("short text", "<p>" + "x" * 200 + "</p>", limit=100)
    assert (shown.text, shown.html, shown.cut) == ("short text", None, True)
    only_html = body_to_show(None, "<p>" + "x" * 200 + "</p>", limit=100)
    assert only_html.html is not None
    assert len(only_html.html) <= 100
    assert only_html.cut


# -- the page and the downloads ---------------------------------------------------------------


def test_the_case_page_shows_at_most_1_mb_of_a_body_and_offers_the_full_text(
    auth: Auth, client: FlaskClient, agent: StaffUser, create_case: Callable[..., Case]
) -> None:
    body = LINE * (3 * BODY_DISPLAY_MAX_BYTES // len(LINE.encode()))
    case = create_case()
    message = mail_on(case, subject="Very long", body_text=body)
    auth.login(agent)

    page = client.get(f"/staff/cases/{case.id}")

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert len(page.get_data()) < BODY_DISPLAY_MAX_BYTES + 200_000
    assert "Only the first 1 MB of this message is shown" in html
    link = f"/staff/messages/{message.id}/text"
    assert f'href="{link}"' in html
    download = client.get(link)
    assert download.status_code == 200
    assert download.get_data(as_text=True) == body
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.mimetype == "text/plain"


def test_the_raw_message_is_a_download_with_its_exact_bytes(
    auth: Auth, client: FlaskClient, agent: StaffUser, create_case: Callable[..., Case]
) -> None:
    raw = b"From: r@example.net\r\nSubject: evidence\r\n\r\n<script>alert(1)</script>\r\n"
    stored = BlobStore(get_settings().blob_dir).put(raw)
    case = create_case()
    message = mail_on(case, subject="evidence", raw_sha256=stored.sha256, raw_size=len(raw))
    auth.login(agent)

    assert f'href="/staff/messages/{message.id}/raw"' in client.get(
        f"/staff/cases/{case.id}"
    ).get_data(as_text=True)
    download = client.get(f"/staff/messages/{message.id}/raw")
    assert download.status_code == 200
    assert download.get_data() == raw
    assert download.mimetype == "application/octet-stream"
    assert f"message-{message.id}.eml" in download.headers["Content-Disposition"]
    assert download.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"


def test_downloads_follow_the_case_access_rules(
    auth: Auth,
    client: FlaskClient,
    create_staff: Callable[..., StaffUser],
    create_case: Callable[..., Case],
) -> None:
    """Legal cannot see a Trust & Safety case, so not its mail either; quarantined mail is
    read on the quarantine page only; mail with no case is no one's download."""
    raw = b"Subject: x\r\n\r\nbody\r\n"
    stored = BlobStore(get_settings().blob_dir).put(raw)
    case = create_case()
    visible = mail_on(case, body_text="b", raw_sha256=stored.sha256)
    held = mail_on(case, body_text="b", raw_sha256=stored.sha256, quarantined=True)
    orphan = Message(direction="inbound", channel="mail", body_text="b", raw_sha256=stored.sha256)
    db.session.add(orphan)
    db.session.commit()
    no_raw = mail_on(case, body_text="b")

    auth.login(create_staff("legal"))
    for kind in ("raw", "text"):
        assert client.get(f"/staff/messages/{visible.id}/{kind}").status_code == 404
    auth.logout()
    auth.login(create_staff("trust_safety"))
    for kind in ("raw", "text"):
        assert client.get(f"/staff/messages/{visible.id}/{kind}").status_code == 200
        assert client.get(f"/staff/messages/{held.id}/{kind}").status_code == 404
        assert client.get(f"/staff/messages/{orphan.id}/{kind}").status_code == 404
        assert client.get(f"/staff/messages/999999/{kind}").status_code == 404
    assert client.get(f"/staff/messages/{no_raw.id}/raw").status_code == 404
