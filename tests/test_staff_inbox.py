"""The inbox: queues with counts, urgency order, filters, keyset pages and search."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Case, StaffUser
from portal.models.base import utcnow
from portal.search import fts_query
from portal.services.inbox import InboxFilters, inbox_page, queue_counts, time_left
from tests.factories import Auth


@pytest.fixture
def admin(create_staff: Callable[..., StaffUser]) -> StaffUser:
    return create_staff("trust_safety", "legal", "admin")


def test_order_is_urgent_first_then_due_time_then_no_clock(
    admin: StaffUser, create_case: Callable[..., Case]
) -> None:
    now = utcnow()
    warning = create_case("conduct_warning", now=now - timedelta(days=9))  # no clock
    ban_late = create_case("global_ban", now=now - timedelta(days=1))
    ban_early = create_case("global_ban", now=now - timedelta(days=20))
    urgent = create_case("child_protection", now=now)
    page = inbox_page(db.session, admin, InboxFilters())
    assert [c.id for c in page.cases] == [urgent.id, ban_early.id, ban_late.id, warning.id]


def test_keyset_pages_cover_everything_once(
    admin: StaffUser, create_case: Callable[..., Case]
) -> None:
    now = utcnow()
    made = [
        create_case("global_ban" if i % 3 else "conduct_warning", now=now - timedelta(hours=i))
        for i in range(23)
    ]
    seen: list[int] = []
    cursor = None
    while True:
        page = inbox_page(db.session, admin, InboxFilters(), cursor, page_size=5)
        seen += [c.id for c in page.cases]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(c.id for c in made)
    assert len(seen) == len(set(seen))


def test_filters(admin: StaffUser, create_case: Callable[..., Case]) -> None:
    now = utcnow()
    overdue = create_case("global_ban", now=now - timedelta(weeks=5))
    dmca = create_case("dmca")
    closed = create_case("global_ban", status="closed")
    mine = create_case("range_block", assignee_id=admin.id)

    def ids(**kwargs: object) -> set[int]:
        return {c.id for c in inbox_page(db.session, admin, InboxFilters(**kwargs)).cases}  # type: ignore[arg-type]

    assert ids(overdue=True) == {overdue.id}
    assert ids(team="legal") == {dmca.id}
    assert ids(action="dmca") == {dmca.id}
    assert closed.id not in ids()
    assert closed.id in ids(status="all")
    assert ids(status="closed") == {closed.id}
    assert ids(assignee="me") == {mine.id}
    assert mine.id not in ids(assignee="none")


def test_counts_per_queue_with_overdue(admin: StaffUser, create_case: Callable[..., Case]) -> None:
    create_case("global_ban", now=utcnow() - timedelta(weeks=5))
    create_case("global_ban")
    create_case("dmca")
    counts = queue_counts(db.session, admin)
    assert counts["trust_safety"] == 2
    assert counts["trust_safety:overdue"] == 1
    assert counts["legal"] == 1
    assert counts["appeals"] == 0


def test_search_subjects_bodies_senders_and_references(
    admin: StaffUser, create_case: Callable[..., Case]
) -> None:
    arabic = create_case(summary="تحرش على ويكيبيديا العربية")
    sockpuppet = create_case(
        summary="A sockpuppet farm edits Zanzibar articles", requester_email="alice@wiki.example"
    )
    other = create_case(summary="Something else entirely")

    def search(q: str) -> set[int]:
        return {c.id for c in inbox_page(db.session, admin, InboxFilters(query=q)).cases}

    assert search("zanzibar") == {sockpuppet.id}
    assert search("sockpuppet zanzibar") == {sockpuppet.id}
    assert search("sockpuppet entirely") == set()
    assert search("alice@wiki.example") == {sockpuppet.id}
    assert search("ويكيبيديا") == {arabic.id}
    assert search(other.reference or "") == {other.id}
    assert search('" OR * NEAR(') == set()  # operators are searched for, never parsed


def test_fts_query_quotes_every_term() -> None:
    assert fts_query('zeta" NEAR omega*') == '"zeta" "NEAR" "omega"'
    assert fts_query("  ") is None


def test_time_left_in_words() -> None:
    now = utcnow()
    case = Case(status="open", due_at=now + timedelta(days=3, hours=1))
    assert time_left(case, now) == ("3 days left", False)
    case.due_at = now - timedelta(hours=5)
    assert time_left(case, now) == ("overdue by 5 hours", True)
    case.status = "closed"
    assert time_left(case, now) is None


def test_inbox_page_marks_overdue_in_text_not_only_colour(
    auth: Auth, client: FlaskClient, admin: StaffUser, create_case: Callable[..., Case]
) -> None:
    late = create_case("global_ban", now=utcnow() - timedelta(weeks=5))
    auth.login(admin)
    html = client.get("/staff/").get_data(as_text=True)
    assert late.reference in html
    assert "overdue by" in html
    assert "1 overdue" in html
    assert client.get("/staff/?q=harassment&status=all&overdue=1").status_code == 200
    assert client.get("/staff/?after=garbage").status_code == 200


def test_stopwords_are_dropped_unless_they_are_the_whole_query() -> None:
    assert fts_query("the harassment of an editor") == '"harassment" "editor"'
    assert fts_query("The") == '"The"'
