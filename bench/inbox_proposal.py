"""An exact alternative to the capped search of main, measured but not applied.

Main caps a search at the 20,000 most recent matching messages (``portal.search.
SEARCH_HIT_LIMIT``). This runs the same measurements as bench_inbox on the same database with
the inbox page swapped for an uncapped one (walk the queue and probe each case, for common
words). portal/ itself is not touched; bench/README.md compares the two.

    .venv/bin/python -m bench.inbox_proposal [--runs 200] [--warmup 10]

Why search misses its target: the inbox turns every matching message into a case id before it
orders anything (``cases.id IN (SELECT case_id FROM messages WHERE id IN (SELECT rowid FROM
message_search WHERE message_search MATCH ?))``), so the cost grows with the number of matching
messages: each one is a row read from the 2.5 GB messages table (122,000 for "salary":
~250 ms; 941,000 for "the": ~800 ms, 250 ms of it in FTS5 alone). A page needs only the first
51 cases in queue order. For a common word, walking the queue index (one priority at a time,
as the inbox already does) and asking of each case whether one of its messages matches
(``EXISTS``, an FTS5 lookup by rowid per message) finds them after a few dozen cases. For a
rare word that walk would visit every open case, so the list stays: a count of the matches,
capped at the threshold (a few ms), picks the shape.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    bindparam,
    column,
    exists,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy.orm import Session

import portal.staff.inbox
from bench import bench_inbox, seed_inbox
from portal.models import Case, Message, StaffUser
from portal.models.base import utcnow
from portal.search import FTS_TABLE, case_reference_query, fts_query
from portal.services import inbox

# --- what would go into portal/search.py ----------------------------------------------------

# Past this many matching messages, walking the queue and probing each case finds a page
# sooner than listing the cases of every match (the two cost the same near 20,000 here).
WALK_THRESHOLD = 20_000
_FTS = table(FTS_TABLE, column("rowid"))


def _match(query: str) -> ColumnElement[bool]:
    return literal_column(FTS_TABLE).op("MATCH")(bindparam("query", query, type_=String))


def is_common_search(session: Session, user_text: str) -> bool:
    """True when ``user_text`` matches at least WALK_THRESHOLD messages (SQLite only)."""
    if session.get_bind().dialect.name != "sqlite" or case_reference_query(user_text) is not None:
        return False
    query = fts_query(user_text)
    if query is None:
        return False
    hits = session.scalar(
        select(func.count()).select_from(
            select(_FTS.c.rowid).where(_match(query)).limit(WALK_THRESHOLD).subquery()
        )
    )
    return (hits or 0) >= WALK_THRESHOLD


def case_has_match(user_text: str) -> ColumnElement[bool]:
    """EXISTS a message of this case matching ``user_text``: for a walk along the queue."""
    query = fts_query(user_text) or '""'
    return exists(
        select(Message.id)
        .join(_FTS, _FTS.c.rowid == Message.id)
        .where(Message.case_id == Case.id, _match(query))
    )


# --- what would change in portal/services/inbox.py --------------------------------------------

_original_inbox_page = inbox.inbox_page


def proposed_inbox_page(
    session: Session,
    user: StaffUser,
    filters: inbox.InboxFilters,
    cursor: str | None = None,
    *,
    now: datetime | None = None,
    page_size: int = inbox.PAGE_SIZE,
) -> inbox.InboxPage:
    """inbox_page, with a common search walked one priority at a time like the queue."""
    if not filters.query or not is_common_search(session, filters.query):
        return _original_inbox_page(session, user, filters, cursor, now=now, page_size=page_size)
    now = now or utcnow()
    conditions = [
        *inbox._conditions(session, user, dataclasses.replace(filters, query=None), now),
        case_has_match(filters.query),
    ]
    decoded = inbox._decode_cursor(cursor) if cursor else None
    rows = inbox._walk_priorities(session, conditions, decoded, page_size + 1)
    cases = rows[:page_size]
    return inbox.InboxPage(
        cases=cases,
        next_cursor=inbox._encode_cursor(cases[-1]) if len(rows) > page_size and cases else None,
        counts=inbox.queue_counts(session, user, now),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=seed_inbox.DEFAULT_PATH)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--page", type=int, default=50)
    parser.add_argument(
        "--out", type=Path, default=bench_inbox.RESULTS / "inbox_bench_proposal.json"
    )
    args = parser.parse_args(argv)
    # The route imported inbox_page by name: replace it where it is called.
    portal.staff.inbox.inbox_page = proposed_inbox_page
    report: dict[str, Any] = bench_inbox.run(args.db, args.runs, args.warmup, args.seed, args.page)
    report["proposal"] = {"walk_threshold": WALK_THRESHOLD}
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print()
    print(bench_inbox.markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
