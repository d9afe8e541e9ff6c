"""Full-text search over messages: SQLite FTS5 where we have it, a plain LIKE elsewhere.

The FTS5 table uses the ``messages`` table as its external content and is kept in step by
triggers, so every writer (the web form, the mail bridge's batch inserts, staff replies) keeps
the index right without remembering to. PostgreSQL falls back to ``ILIKE``; a tsvector column
would be the next step there.
"""

from __future__ import annotations

import re

from sqlalchemy import (
    DDL,
    ColumnElement,
    Select,
    String,
    bindparam,
    event,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from portal.models import Case, Message
from portal.policy.references import REFERENCE_PATTERN

FTS_TABLE = "message_search"

CREATE_STATEMENTS = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS message_search USING fts5("
    "subject, body_text, sender, content='messages', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS messages_search_ai AFTER INSERT ON messages BEGIN "
    "INSERT INTO message_search(rowid, subject, body_text, sender) "
    "VALUES (new.id, new.subject, new.body_text, new.sender); END",
    "CREATE TRIGGER IF NOT EXISTS messages_search_ad AFTER DELETE ON messages BEGIN "
    "INSERT INTO message_search(message_search, rowid, subject, body_text, sender) "
    "VALUES ('delete', old.id, old.subject, old.body_text, old.sender); END",
    "CREATE TRIGGER IF NOT EXISTS messages_search_au AFTER UPDATE OF subject, body_text, sender "
    "ON messages BEGIN "
    "INSERT INTO message_search(message_search, rowid, subject, body_text, sender) "
    "VALUES ('delete', old.id, old.subject, old.body_text, old.sender); "
    "INSERT INTO message_search(rowid, subject, body_text, sender) "
    "VALUES (new.id, new.subject, new.body_text, new.sender); END",
)
# Tests build the schema with create_all: give them the same index the migration creates.
for _statement in CREATE_STATEMENTS:
    event.listen(Message.__table__, "after_create", DDL(_statement).execute_if(dialect="sqlite"))


def is_search_table(name: str) -> bool:
    """FTS5's own tables, which Alembic must not mistake for tables to drop."""
    return name == FTS_TABLE or name.startswith(f"{FTS_TABLE}_")


_TERM = re.compile(r"\w[\w@.+'-]*", re.UNICODE)
# Words in nearly every English message: matching them costs a pass over most of the index
# and narrows nothing. Dropped unless they are all the query has.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "which",
        "who",
        "will",
        "with",
        "you",
        "your",
    ]
)


def search_terms(user_text: str) -> list[str]:
    terms = _TERM.findall(user_text)[:12]
    meaningful = [term for term in terms if term.lower() not in STOPWORDS]
    return meaningful or terms


def fts_query(user_text: str) -> str | None:
    """Words of the staff member's query as quoted FTS5 strings, ANDed; None when empty.

    Quoting each term means operators typed by a person (``OR``, ``NEAR``, ``*``, ``-``) are
    searched for as words, never parsed as syntax that could fail or surprise.
    """
    terms = search_terms(user_text)
    if not terms:
        return None
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


# A word found in a large share of all messages would make every search map hundreds of
# thousands of hits to their cases (270 ms for 122,000 hits on the benchmark). The most recent
# hits are the ones staff look for; the page says when older ones were left out.
SEARCH_HIT_LIMIT = 20_000


def _fts_hits(query: str, limit: int) -> Select[tuple[int]]:
    return (
        select(text("rowid"))
        .select_from(text(FTS_TABLE))
        .where(
            text("message_search MATCH :query").bindparams(bindparam("query", query, type_=String))
        )
        .order_by(text("rowid DESC"))
        .limit(limit)
    )


def hits_capped(session: Session, user_text: str) -> bool:
    """Whether more messages match than a search looks through."""
    if case_reference_query(user_text) is not None:
        return False  # a reference goes straight to its case: no full-text search ran
    query = fts_query(user_text)
    if query is None or session.get_bind().dialect.name != "sqlite":
        return False
    found = session.scalar(
        select(func.count()).select_from(_fts_hits(query, SEARCH_HIT_LIMIT + 1).subquery())
    )
    return (found or 0) > SEARCH_HIT_LIMIT


def matching_case_ids(session: Session, user_text: str) -> Select[tuple[int]] | None:
    """A SELECT of the ids of cases with a message matching ``user_text``."""
    if session.get_bind().dialect.name == "sqlite":
        query = fts_query(user_text)
        if query is None:
            return None
        return select(Message.case_id).where(Message.id.in_(_fts_hits(query, SEARCH_HIT_LIMIT)))
    terms = search_terms(user_text)
    if not terms:
        return None
    conditions: list[ColumnElement[bool]] = []
    for term in terms:
        pattern = f"%{term}%"
        conditions.append(
            or_(
                Message.subject.ilike(pattern),
                Message.body_text.ilike(pattern),
                Message.sender.ilike(pattern),
            )
        )
    return select(Message.case_id).where(*conditions, Message.case_id.is_not(None))


def case_reference_query(user_text: str) -> ColumnElement[bool] | None:
    """A reference typed in the search box goes straight to that case."""
    match = REFERENCE_PATTERN.search(user_text)
    return Case.reference == match[0].upper() if match else None
