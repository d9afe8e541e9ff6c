"""Mailbox leases (mailbridge.lease): bridges on several hosts never work on one mailbox at once.

The lease rules are tested on the database directly; the command's behaviour (skip a leased
mailbox and say so, release the lease when done) against the real Dovecot.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
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
from tests.mailbridge_helpers import ROOT, append_all, incoming, make_mail, sync
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


# -- issue 10: two bridges that look alike ---------------------------------------------------------

# A bridge process that says it runs on HOST with PID (its container says so), with its
# temporary directory (its container's /tmp), takes the lease of ``ca`` once, prints the
# outcome, and holds on until its standard input closes (or it is killed).
_BRIDGE = """
import os, socket, sys
host, pid, url = sys.argv[1:4]
socket.gethostname = lambda: host
if pid:
    os.getpid = lambda: int(pid)
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from mailbridge.lease import Holder, MailboxLeased, take
from portal.models.base import utcnow
with Session(create_engine(url)) as session:
    try:
        take(session, "ca", Holder.this_process(), utcnow())
        print("taken", flush=True)
    except MailboxLeased as exc:
        print(exc, flush=True)
sys.stdin.read()
"""


class Bridge:
    """One ``_BRIDGE`` process; ``outcome`` is its one line ("taken", or why it skipped)."""

    def __init__(self, app: Flask, tmpdir: Path, *, host: str, pid: int | None = None) -> None:
        tmpdir.mkdir(exist_ok=True)
        env = {**os.environ, "TMPDIR": str(tmpdir)}
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BRIDGE, host, str(pid or ""), url],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.outcome = self.proc.stdout.readline().strip()

    def crash(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def bridges() -> Iterator[list[Bridge]]:
    started: list[Bridge] = []
    yield started
    for bridge in started:
        bridge.close()


def _dead_pid() -> int:
    """A PID no process has here now (it had one a moment ago)."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    return dead.pid


def test_two_bridges_with_the_same_host_and_pid_never_both_hold_a_mailbox(
    app: Flask, state: None, tmp_path: Path, bridges: list[Bridge]
) -> None:
    """Issue 10: two bridges in containers with the same hostname and PID both took the
    lease. Each container has its own /tmp here (TMPDIR), as containers do."""
    first = Bridge(app, tmp_path / "container-a", host="box", pid=4242)
    bridges.append(first)
    assert first.outcome == "taken"

    second = Bridge(app, tmp_path / "container-b", host="box", pid=4242)
    bridges.append(second)

    assert second.outcome.startswith("ca: skipped, box:4242 is working on it until ")
    assert lease()[0] != "box:4242"  # the owner names the bridge instance too


def test_a_holder_whose_pid_is_unknown_here_is_not_taken_for_dead(
    app: Flask, state: None, tmp_path: Path, bridges: list[Bridge]
) -> None:
    """Another container on a host of the same name: its bridge's PID means nothing in our
    PID namespace, so "no such process" proves nothing; the lease is waited out."""
    alive = Bridge(app, tmp_path / "container-a", host="box", pid=_dead_pid())
    bridges.append(alive)
    assert alive.outcome == "taken"

    other = Bridge(app, tmp_path / "container-b", host="box")
    bridges.append(other)

    assert other.outcome.startswith("ca: skipped, box:")


def test_only_a_provably_dead_predecessor_on_this_machine_is_taken_over_at_once(
    app: Flask, state: None, tmp_path: Path, bridges: list[Bridge]
) -> None:
    """A restart after a SIGKILL must not wait out the lease; a live bridge keeps it."""
    here = tmp_path / "this-machine"
    first = Bridge(app, here, host="box")
    bridges.append(first)
    assert first.outcome == "taken"
    while_alive = Bridge(app, here, host="box")
    bridges.append(while_alive)
    assert while_alive.outcome.startswith("ca: skipped, box:")

    first.crash()
    elsewhere = Bridge(app, tmp_path / "another-machine", host="box")
    bridges.append(elsewhere)
    assert elsewhere.outcome.startswith("ca: skipped, box:")
    restarted = Bridge(app, here, host="box")
    bridges.append(restarted)
    assert restarted.outcome == "taken"
