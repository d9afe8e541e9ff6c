"""Issue 6 through the real mail path: Dovecot in, quarantine for every address variant, no
acknowledgement, and the channels the law keeps open raised as urgent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Case, Lockout, Message, StaffUser
from portal.models.base import utcnow
from portal.services import quarantine
from portal.services.cases import find_or_create_reporter
from tests.mailbridge_helpers import append_all, make_mail, sync
from tests.servers.fixtures import ImapAccount
from tests.servers.smtp import SmtpServer

VARIANTS = [
    "jane.doe@gmail.com",
    "Jane.Doe@GMAIL.COM",
    "janedoe+appeal@gmail.com",
    "j.a.n.e.d.o.e@googlemail.com",
]


@pytest.fixture
def app_config(imap_account: ImapAccount, smtp: SmtpServer) -> dict[str, Any]:
    return {"IMAP_CA_URL": imap_account.url(), "MAIL_SERVER": smtp.host, "MAIL_PORT": smtp.port}


@pytest.fixture
def locked_out(app: Flask) -> Lockout:
    reporter = find_or_create_reporter(db.session, "jane.doe@gmail.com")
    now = utcnow()
    lockout = Lockout(
        reporter_id=reporter.id,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=30),
        proposed_days=30,
    )
    db.session.add(lockout)
    db.session.commit()
    return lockout


def test_every_address_variant_is_quarantined_without_acknowledgement(
    runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer, locked_out: Lockout
) -> None:
    append_all(
        imap_account,
        [make_mail(f"Complaint {i}", sender=address) for i, address in enumerate(VARIANTS)],
    )
    assert sync(runner).exit_code == 0
    db.session.rollback()
    rows = db.session.scalars(select(Message).order_by(Message.id)).all()
    assert len(rows) == len(VARIANTS)
    assert all(row.quarantined and row.case_id is None and not row.urgent for row in rows)
    assert (db.session.scalar(select(func.count(Case.id))) or 0) == 0
    assert smtp.messages == []


@pytest.mark.parametrize(
    ("subject", "body", "reason"),
    [
        (
            "Please help",
            "An adult is grooming a 13-year-old editor on my wiki.",
            "child protection",
        ),
        ("Court order attached", "Enclosed is a court order requiring removal.", "court order"),
    ],
)
def test_child_protection_and_court_orders_are_urgent_in_quarantine(
    app: Flask,
    runner: FlaskCliRunner,
    imap_account: ImapAccount,
    smtp: SmtpServer,
    locked_out: Lockout,
    create_staff: Callable[..., StaffUser],
    subject: str,
    body: str,
    reason: str,
) -> None:
    imap_account.append(make_mail(subject, sender="JaneDoe@googlemail.com", body=body))
    sync(runner)
    db.session.rollback()
    message = db.session.scalars(select(Message)).one()
    assert (message.quarantined, message.urgent) == (True, True)
    assert reason in (message.flag_reason or "")
    assert quarantine.urgent_waiting(db.session, create_staff("trust_safety")) == 1
    assert smtp.messages == []


def test_after_the_lockout_mail_flows_again(
    runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer, locked_out: Lockout
) -> None:
    locked_out.ends_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    imap_account.append(make_mail("Back again", sender="jane.doe@gmail.com"))
    sync(runner)
    db.session.rollback()
    message = db.session.scalars(select(Message).where(Message.direction == "inbound")).one()
    assert message.quarantined is False
    assert message.case_id is not None
    assert len(smtp.wait_for(1)) == 1
