"""Mailbox leases (mailbridge.lease): bridges on several hosts never work on one mailbox at once.

The lease rules are tested on the database directly; the command's behaviour (skip a leased
mailbox and say so, release the lease when done) against the real Dovecot.
"""

from __future__ import annotations

import socket
import subprocess
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from mailbridge.cli import _ingestor
from mailbridge.lease import Holder, MailboxLeased, give_back, take
from portal.extensions import db
from portal.models import MailboxState, Message
from portal.models.base import utcnow
from tests.mailbridge_helpers import append_all, incoming, make_mail, sync
from tests.servers.fixtures import ImapAccount

ONE = Holder("host-one:101", seconds=600)
TWO = Holder("host-two:202", seconds=600)


@pytest.fixture
def app_config(imap_account: ImapAccount) -> dict[str, Any]:
    return {"IMAP_CA_URL": imap_account.url(), "IMAP_APPEALS_URL": None}


@pytest.fixture
def state(app: Flask) -> None:
    db.session.add(MailboxState(name="ca", uidvalidity=1, last_uid=0))
    db.session.commit()


def lease() -> tuple[str | None, Any]:
    db.session.rollback()
    row = db.session.scalars(select(MailboxState).where(MailboxState.name == "ca")).one()
    return row.lease_owner, row.lease_expires_at


def test_a_held_lease_refuses_another_bridge_and_says_who_and_until_when(state: None) -> None:
    now = utcnow()
    take(db.session, "ca", ONE, now)
    with pytest.raises(MailboxLeased, match=r"ca: skipped, host-one:101 is working on it until"):
        take(db.session, "ca", TWO, now + timedelta(minutes=5))
    assert lease()[0] == ONE.name


def test_the_holder_renews_and_an_expired_lease_passes_to_another(state: None) -> None:
    now = utcnow()
    take(db.session, "ca", ONE, now)
    take(db.session, "ca", ONE, now + timedelta(minutes=9))  # renewed: ten more minutes
    with pytest.raises(MailboxLeased):
        take(db.session, "ca", TWO, now + timedelta(minutes=15))
    take(db.session, "ca", TWO, now + timedelta(minutes=20))  # ONE stopped renewing
    assert lease()[0] == TWO.name


def test_giving_back_frees_the_mailbox_and_only_the_holder_can(state: None) -> None:
    now = utcnow()
    take(db.session, "ca", ONE, now)
    give_back(db.session, "ca", TWO)  # not TWO's to give
    assert lease()[0] == ONE.name
    give_back(db.session, "ca", ONE)
    assert lease() == (None, None)
    take(db.session, "ca", TWO, now)


def test_a_restart_on_the_same_host_takes_over_from_its_dead_predecessor(state: None) -> None:
    """SIGKILL leaves the lease behind; waiting it out would stall mail for 15 minutes."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    predecessor = Holder(f"{socket.gethostname()}:{dead.pid}")
    now = utcnow()
    take(db.session, "ca", predecessor, now)
    take(db.session, "ca", Holder.this_process(), now)
    assert lease()[0] == Holder.this_process().name


def test_a_live_process_on_this_host_keeps_its_lease(state: None) -> None:
    alive = Holder(f"{socket.gethostname()}:1")  # init: always there, not ours to signal
    now = utcnow()
    take(db.session, "ca", alive, now)
    with pytest.raises(MailboxLeased):
        take(db.session, "ca", Holder.this_process(), now)


def test_filing_a_batch_renews_the_lease(state: None, app: Flask) -> None:
    ingestor = _ingestor("ca", acknowledge=False)
    start = utcnow() - timedelta(minutes=14)
    take(db.session, "ca", ingestor.holder, start)
    (mail,) = incoming([make_mail("Renewal", sender="renew@example.net")], utcnow())
    ingestor.ingest_batch([mail], uidvalidity=1, cursor_uid=1)
    owner, expires = lease()
    assert owner == ingestor.holder.name
    assert expires > utcnow() + timedelta(minutes=10)


# -- the command, against the real Dovecot --------------------------------------------------------


def test_sync_skips_a_mailbox_another_bridge_holds_then_files_and_releases_it(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount
) -> None:
    append_all(
        imap_account, [make_mail(f"Leased {n}", sender=f"l{n}@example.net") for n in range(3)]
    )
    db.session.add(MailboxState(name="ca", uidvalidity=imap_account.uidvalidity(), last_uid=0))
    db.session.commit()
    take(db.session, "ca", TWO, utcnow())

    skipped = sync(runner)
    assert skipped.exit_code == 0, skipped.output
    assert skipped.output.startswith("ca: skipped, host-two:202 is working on it until ")
    assert db.session.scalar(select(func.count(Message.id))) == 0

    db.session.execute(
        MailboxState.__table__.update().values(lease_expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    done = sync(runner)
    assert done.output.strip() == "ca: 3 new, 0 already stored, 0 flagged (3 cases opened)"
    assert lease() == (None, None)  # given back: another bridge may take it now
