"""Filing a batch "in one go" on SQLite, and falling back to message by message.

``Ingestor._commit`` first files a whole batch under ``BEGIN IMMEDIATE`` with ids handed out
up front (``portal.services.bulk``), so each table is written in one statement. That path
cannot tell which message broke it, so any failure of ours must send the batch round again
message by message, where one bad message is kept unfiled and flagged and the rest are filed.
These tests feed ``IncomingMail`` straight to the Ingestor the CLI builds (no IMAP server).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

import mailbridge.ingest
from mailbridge.cli import _ingestor
from mailbridge.ingest import IncomingMail, Ingestor
from mailbridge.threads import decide
from portal.extensions import db
from portal.models import (
    Attachment,
    AuditEvent,
    Case,
    CaseParty,
    MailboxState,
    Message,
    OutboundMail,
)
from portal.models.base import utcnow
from portal.policy.mail import MailPurpose
from portal.policy.references import format_reference
from portal.policy.routing import Team
from portal.services import audit
from portal.services.cases import open_mail_case
from tests.conftest import OUR_AUTHSERV_ID
from tests.mailbridge_helpers import incoming, make_mail

UIDVALIDITY = 7
ALICE = "Alice Example <alice@example.org>"
# Alice's mail passes DMARC at our server, so her replies join her case as hers (issue 10).
ALICE_PASSES = (
    f"Authentication-Results: {OUR_AUTHSERV_ID}; dmarc=pass header.from=example.org\r\n"
).encode()
REPORTS = 8  # unrelated new reports in the batch, besides Alice's thread


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Prepare in this process: these tests are about filing, not about worker processes."""
    return {"MAIL_WORKERS": 0}


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The batch's clock, fixed so the reply can quote the reference (its year) in advance."""
    fixed = utcnow()
    monkeypatch.setattr(mailbridge.ingest, "utcnow", lambda: fixed)
    return fixed


@pytest.fixture
def ingestor(app: Flask, now: datetime) -> Ingestor:
    """The CLI's Ingestor for ``ca``, over a database that already holds one case (opened
    by a normal flush, with its audit event), so batch ids must start above stored rows."""
    open_mail_case(
        db.session,
        team=Team.TRUST_SAFETY,
        mailbox="ca",
        sender="earlier@example.net",
        sender_name=None,
        subject="An older case",
        now=now,
    )
    db.session.add(MailboxState(name="ca", uidvalidity=UIDVALIDITY, last_uid=0))
    db.session.commit()
    built = _ingestor("ca", acknowledge=False, authserv_id=OUR_AUTHSERV_ID)
    assert built.workers == 0
    return built


def batch(now: datetime, *, poison_at: int | None = None) -> tuple[list[IncomingMail], str]:
    """Alice's report (with an attachment), unrelated reports, then two replies of Alice's
    and a stranger quoting her reference; returns the mails and that reference.

    The first case of the batch is id 2 (one case is stored), so its reference is known
    before filing, as a real reply would quote it. ``poison_at`` inserts a message there
    whose threading raises.
    """
    reference = format_reference(now.year, 2)
    raws = [
        ALICE_PASSES
        + make_mail(
            "Harassment on my talk page",
            sender=ALICE,
            message_id="<report.1@example.org>",
            attachments=[("evidence.txt", "text/plain", b"screenshots follow")],
        ),
        *(make_mail(f"Report {n}", sender=f"person{n}@example.net") for n in range(REPORTS)),
        ALICE_PASSES + make_mail(f"Re: [{reference}] more details", sender=ALICE),
        ALICE_PASSES
        + make_mail(
            "Re: Harassment on my talk page",
            sender="alice@example.org",
            in_reply_to="<report.1@example.org>",
            references=["<report.1@example.org>"],
        ),
        make_mail(f"Re: [{reference}] let me in", sender="mallory@example.com"),
    ]
    if poison_at is not None:
        raws.insert(poison_at, make_mail("poison pill", sender="poison@example.net"))
    mails = incoming(raws, now)
    return mails, reference


def inbound() -> list[Message]:
    db.session.rollback()
    return list(
        db.session.scalars(select(Message).where(Message.mailbox == "ca").order_by(Message.uid))
    )


def assert_filed_and_threaded(reference: str, *, skip_subject: str | None = None) -> None:
    """Every good message on the right case: Alice's replies on her case, the stranger on a
    new case linked to it and flagged, each unrelated report on a case of its own."""
    messages = [m for m in inbound() if m.subject != skip_subject]
    alice_case = db.session.scalars(select(Case).where(Case.reference == reference)).one()
    by_subject = {m.subject: m for m in messages}
    assert by_subject["Harassment on my talk page"].case_id == alice_case.id
    assert by_subject[f"Re: [{reference}] more details"].case_id == alice_case.id
    assert by_subject["Re: Harassment on my talk page"].case_id == alice_case.id
    stranger = by_subject[f"Re: [{reference}] let me in"]
    assert stranger.case_id not in (None, alice_case.id)
    assert "not a party" in (stranger.flag_reason or "")
    assert db.session.get_one(Case, stranger.case_id).linked_case_id == alice_case.id
    reports = [by_subject[f"Report {n}"] for n in range(REPORTS)]
    assert len({m.case_id for m in reports}) == REPORTS
    assert alice_case.id not in {m.case_id for m in reports}

    attachment = db.session.scalars(select(Attachment)).one()
    assert attachment.message_id == by_subject["Harassment on my talk page"].id
    assert attachment.filename == "evidence.txt"
    parties = db.session.scalars(select(CaseParty).where(CaseParty.case_id == alice_case.id))
    assert [p.address for p in parties] == ["alice@example.org"]
    # One "case.opened" per case, each naming its case, and the chain unbroken across the
    # batch and the case stored before it.
    opened = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "case.opened"))
    assert sorted(e.case_id for e in opened) == sorted(db.session.scalars(select(Case.id)))
    assert list(audit.broken_links(db.session)) == []


@pytest.mark.sqlite_only
def test_a_batch_is_filed_with_one_insert_per_table(
    ingestor: Ingestor, now: datetime, inserts: Counter[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The reason for the one-go path: a batch costs a statement per table, not one per
    message, and threads exactly as message by message would (a reply finds a case opened
    earlier in the same batch, by reference and by headers)."""
    mails, reference = batch(now)
    inserts.clear()
    with caplog.at_level(logging.WARNING, logger="mailbridge"):
        tally = ingestor.ingest_batch(mails, uidvalidity=UIDVALIDITY, cursor_uid=len(mails))

    assert "in one go" not in caplog.text  # it did not fall back
    assert inserts["messages"] <= 2
    assert inserts["cases"] <= 2
    assert inserts["attachments"] <= 2
    assert inserts["audit_events"] <= 2
    assert (tally.new, tally.already, tally.opened, tally.flagged) == (
        len(mails),
        0,
        1 + REPORTS + 1,  # Alice, the reports, the stranger
        1,  # the stranger
    )
    stored = inbound()
    assert [m.uid for m in stored] == list(range(1, len(mails) + 1))
    assert all(m.uidvalidity == UIDVALIDITY for m in stored)
    assert_filed_and_threaded(reference)
    assert db.session.scalars(select(MailboxState)).one().last_uid == len(mails)


@pytest.mark.sqlite_only
def test_acknowledged_mail_is_filed_in_one_go_too_within_the_daily_limit(
    ingestor: Ingestor, now: datetime, inserts: Counter[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Fresh mail gets acknowledgements: queueing them must not write the batch out row by
    row, and the per-person daily limit must count those queued earlier in the same batch
    (Alice writes six times, the limit is five)."""
    ingestor.acknowledge = True
    limit = ingestor.settings.acks_per_address_per_day
    raws = [
        *(make_mail(f"Separate matter {n}", sender=ALICE) for n in range(limit + 1)),
        *(make_mail(f"Report {n}", sender=f"person{n}@example.net") for n in range(3)),
    ]
    mails = incoming(raws, now)
    inserts.clear()
    with caplog.at_level(logging.WARNING, logger="mailbridge"):
        tally = ingestor.ingest_batch(mails, uidvalidity=UIDVALIDITY, cursor_uid=len(mails))

    assert "in one go" not in caplog.text
    assert tally.opened == len(mails)
    for table in ("cases", "messages", "outbound_mail", "audit_events"):
        assert inserts[table] <= 2, (table, inserts)
    db.session.rollback()
    acks = db.session.scalars(
        select(OutboundMail).where(OutboundMail.purpose == MailPurpose.ACKNOWLEDGEMENT)
    )
    recipients = [mail.recipients[0] for mail in acks]
    assert recipients.count("alice@example.org") == limit
    assert len(recipients) == limit + 3


def test_filing_the_same_batch_again_stores_nothing(ingestor: Ingestor, now: datetime) -> None:
    """A batch fetched again (a crash after the commit, before the next fetch) is
    recognised whole: the one-go path must see the rows it wrote itself."""
    mails, _ = batch(now)
    ingestor.ingest_batch(mails, uidvalidity=UIDVALIDITY, cursor_uid=len(mails))
    again = ingestor.ingest_batch(mails, uidvalidity=UIDVALIDITY, cursor_uid=len(mails))
    assert (again.new, again.already) == (0, len(mails))
    assert len(inbound()) == len(mails)


@pytest.fixture
def poison(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threading (called inside ``Ingestor._file_new``) raises for one message only, as a
    bug tripped by one odd message would."""

    def failing_decide(mail: Any, *args: Any, **kwargs: Any) -> Any:
        if mail.subject == "poison pill":
            raise ValueError("cannot thread this one")
        return decide(mail, *args, **kwargs)

    monkeypatch.setattr(mailbridge.ingest, "decide", failing_decide)


@pytest.mark.sqlite_only
def test_a_failing_message_sends_the_batch_round_message_by_message(
    ingestor: Ingestor,
    now: datetime,
    poison: None,
    inserts: Counter[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One bad message must not stop a mailbox: the one-go attempt is rolled back whole, the
    batch is filed again message by message, the good messages are filed and threaded, the
    bad one is kept unfiled and flagged for staff, and the cursor moves past all of them."""
    mails, reference = batch(now, poison_at=2)  # after Alice's report, before her replies
    inserts.clear()
    with caplog.at_level(logging.INFO, logger="mailbridge"):
        tally = ingestor.ingest_batch(mails, uidvalidity=UIDVALIDITY, cursor_uid=len(mails))

    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "could not be filed in one go" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "ValueError" in warnings[0].getMessage()
    assert inserts["messages"] >= len(mails)  # filed again, one message at a time
    _assert_the_bad_message_alone_is_kept_unfiled(tally, mails, reference)


def test_a_failing_message_is_kept_unfiled_and_the_rest_are_filed(
    ingestor: Ingestor, now: datetime, poison: None
) -> None:
    """The same promise where batches are always filed message by message (PostgreSQL)."""
    mails, reference = batch(now, poison_at=2)
    tally = ingestor.ingest_batch(mails, uidvalidity=UIDVALIDITY, cursor_uid=len(mails))
    _assert_the_bad_message_alone_is_kept_unfiled(tally, mails, reference)


def _assert_the_bad_message_alone_is_kept_unfiled(
    tally: Any, mails: list[IncomingMail], reference: str
) -> None:
    assert tally.new == len(mails)
    assert tally.flagged == 2  # the stranger and the poison
    stored = inbound()
    assert [m.uid for m in stored] == list(range(1, len(mails) + 1))  # nothing doubled
    (bad,) = [m for m in stored if m.subject == "poison pill"]
    assert bad.uid == 3
    assert bad.case_id is None
    assert bad.flag_reason is not None
    assert bad.flag_reason.startswith("could not be filed automatically (ValueError)")
    assert bad.raw_sha256 is not None  # the raw message stays reachable for staff
    assert_filed_and_threaded(reference, skip_subject="poison pill")
    assert db.session.scalars(select(MailboxState)).one().last_uid == len(mails)


def test_the_one_go_attempt_leaves_nothing_behind(
    ingestor: Ingestor, now: datetime, poison: None
) -> None:
    """After the fallback, ids come from the database again: the one-go attempt's ids and
    cached audit hash were forgotten with its rollback, so a later batch files in one go
    above the rows the fallback wrote."""
    mails, _ = batch(now, poison_at=2)
    ingestor.ingest_batch(mails, uidvalidity=UIDVALIDITY, cursor_uid=len(mails))
    assert "row_ids" not in db.session.info

    later = [
        IncomingMail(raw=raw, arrived_at=now, size=len(raw), uid=100 + n)
        for n, raw in enumerate(
            make_mail(f"Later {n}", sender=f"l{n}@example.net") for n in range(3)
        )
    ]
    tally = ingestor.ingest_batch(later, uidvalidity=UIDVALIDITY, cursor_uid=102)
    assert (tally.new, tally.opened) == (3, 3)
    ids = [m.id for m in inbound()]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert list(audit.broken_links(db.session)) == []
    assert db.session.scalars(select(MailboxState)).one().last_uid == 102
