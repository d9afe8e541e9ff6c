"""Regression (bench/README.md, "one transaction per batch"): a batch's messages and the
mailbox cursor commit together. On SQLite the driver opened no transaction before SAVEPOINT,
so each message used to commit on its own, ahead of the cursor."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from mailbridge.cli import _ingestor
from mailbridge.errors import BridgeFault
from mailbridge.ingest import IncomingMail, Ingestor
from portal.extensions import db
from portal.models import Case, MailboxState, Message
from portal.models.base import utcnow
from portal.policy.references import format_reference
from tests.mailbridge_helpers import incoming, make_mail


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
    return incoming(raws, arrived)


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


@pytest.mark.sqlite_only  # the traceback of the one-go attempt, which only SQLite makes
def test_a_failed_statement_logs_no_mail_content(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """The bridge logs why a batch could not be filed, with the traceback; the statement's
    values (subjects, addresses, bodies) must not be in it. A stored case already holding the
    reference the batch gives out makes every INSERT of the batch's case fail."""
    now = utcnow()
    db.session.add(MailboxState(name="ca", uidvalidity=1, last_uid=0))
    db.session.add(Case(reference=format_reference(now.year, 2), created_at=now, updated_at=now))
    db.session.commit()
    (mail,) = incoming([make_mail("Subject zebra-42", sender="hidden.person@example.net")], now)
    with caplog.at_level(logging.WARNING), pytest.raises(BridgeFault):
        _ingestor("ca", acknowledge=False).ingest_batch([mail], uidvalidity=1, cursor_uid=1)
    assert "could not be filed in one go" in caplog.text
    assert "IntegrityError" in caplog.text
    assert "zebra-42" not in caplog.text  # the case's summary, in the failed INSERT
