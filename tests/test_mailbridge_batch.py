"""Regression (bench/README.md, "one transaction per batch"): a batch's messages and the
mailbox cursor commit together. On SQLite the driver opened no transaction before SAVEPOINT,
so each message used to commit on its own, ahead of the cursor."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from mailbridge.cli import _ingestor
from mailbridge.ingest import IncomingMail, Ingestor
from portal.extensions import db
from portal.models import MailboxState, Message
from tests.mailbridge_helpers import make_mail


@pytest.fixture
def failing_third(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Ingestor._file_new
    calls = {"n": 0}

    def file_new(self: Ingestor, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Ingestor, "_file_new", file_new)
    return


def mails(count: int) -> list[IncomingMail]:
    arrived = datetime(2026, 1, 1, tzinfo=UTC)
    raws = [make_mail(f"Batch message {n}", sender=f"p{n}@example.net") for n in range(count)]
    return [
        IncomingMail(raw=raw, arrived_at=arrived, size=len(raw), uid=uid)
        for uid, raw in enumerate(raws, start=1)
    ]


def test_a_failure_in_a_batch_keeps_nothing_of_it(app: Flask, failing_third: None) -> None:
    db.session.add(MailboxState(name="ca", uidvalidity=1, last_uid=0))
    db.session.commit()
    ingestor = _ingestor("ca", acknowledge=False)
    with pytest.raises(OSError, match="No space"):
        ingestor.ingest_batch(mails(3), uidvalidity=1, cursor_uid=3)
    db.session.rollback()
    assert db.session.scalar(select(func.count(Message.id))) == 0
    assert db.session.scalars(select(MailboxState)).one().last_uid == 0


def test_a_good_batch_commits_messages_and_cursor_together(app: Flask) -> None:
    db.session.add(MailboxState(name="ca", uidvalidity=1, last_uid=0))
    db.session.commit()
    tally = _ingestor("ca", acknowledge=False).ingest_batch(mails(3), uidvalidity=1, cursor_uid=3)
    assert tally.new == 3
    db.session.rollback()
    assert db.session.scalar(select(func.count(Message.id))) == 3
    assert db.session.scalars(select(MailboxState)).one().last_uid == 3


def test_a_failed_statement_logs_no_mail_content(app: Flask) -> None:
    """The bridge logs why a batch could not be filed in one go, with the traceback; the
    statement's values (bodies, addresses) must not be in it."""
    assert db.engine.hide_parameters
