"""Issue 3: the bridge as operators run it, ``flask --app wsgi mailbridge ...`` in a real
process: killed with SIGKILL mid-sync, outliving a Dovecot restart, woken by IDLE, stopped by
SIGTERM, and failing with one clear line on bad configuration."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Flask

from portal.config import get_settings
from portal.extensions import db
from portal.policy.routing import Team
from portal.services.cases import open_mail_case
from portal.services.outbound import queue_mail
from tests.mailbridge_helpers import (
    append_all,
    bridge_env,
    db_count,
    flask,
    kill,
    make_mail,
    start_flask,
    wait_until,
)
from tests.servers.dovecot import DovecotServer
from tests.servers.fixtures import ImapAccount
from tests.servers.smtp import SmtpServer

DISTINCT_IDS = "SELECT count(DISTINCT message_id) FROM messages WHERE direction = 'inbound'"
INBOUND = "SELECT count(*) FROM messages WHERE direction = 'inbound'"


@pytest.fixture
def running(tmp_path: Path) -> Iterator[list[object]]:
    """Processes a test starts; whatever happens, none outlives the test."""
    processes: list[object] = []
    yield processes
    for proc in processes:
        kill(proc)  # type: ignore[arg-type]


def test_sigkill_mid_sync_then_restart_stores_every_message_exactly_once(
    tmp_path: Path,
    imap_account: ImapAccount,
    running: list[object],
    new_database: Callable[[str], str],
) -> None:
    total = 300
    database = new_database("bridge")
    env = bridge_env(
        tmp_path,
        PORTAL_DATABASE_URL=database,
        PORTAL_IMAP_CA_URL=imap_account.url(),
        PORTAL_MAIL_FETCH_BATCH="10",
    )
    upgraded = flask(["db", "upgrade", "heads"], env)
    assert upgraded.returncode == 0, upgraded.stderr
    append_all(
        imap_account,
        (
            make_mail(f"Report {n}", sender=f"p{n}@example.net", message_id=f"<kill.{n}@x.net>")
            for n in range(total)
        ),
    )

    proc = start_flask(["mailbridge", "sync", "--once"], env, tmp_path / "first.log")
    running.append(proc)
    assert wait_until(lambda: db_count(database, INBOUND) > 0, timeout=60, interval=0.01)
    kill(proc, signal.SIGKILL)
    stored_at_kill = db_count(database, INBOUND)
    assert proc.returncode == -signal.SIGKILL
    assert 0 < stored_at_kill < total, "the kill should land in the middle of the sync"

    second = flask(["mailbridge", "sync", "--once"], env, timeout=120)

    assert second.returncode == 0, second.stderr
    assert db_count(database, INBOUND) == total
    assert db_count(database, DISTINCT_IDS) == total
    assert db_count(database, "SELECT count(*) FROM messages WHERE case_id IS NULL") == 0
    assert db_count(database, "SELECT max(last_uid) FROM mailbox_states") == total
    assert second.stdout.startswith(f"ca: {total - stored_at_kill} new"), second.stdout


def test_idle_delivers_new_mail_without_waiting_for_a_poll_and_sigterm_stops_cleanly(
    tmp_path: Path,
    app: Flask,
    database_url: str,
    imap_account: ImapAccount,
    smtp: SmtpServer,
    running: list[object],
) -> None:
    queued_id = _queue_a_reply(app, to="waiting@example.net")
    env = bridge_env(
        tmp_path,
        PORTAL_DATABASE_URL=database_url,
        PORTAL_IMAP_CA_URL=imap_account.url(),
        PORTAL_MAIL_POLL_SECONDS="300",
        PORTAL_MAIL_SERVER=smtp.host,
        PORTAL_MAIL_PORT=str(smtp.port),
    )
    imap_account.append(make_mail("Before start", sender="early@example.net"))
    proc = start_flask(["mailbridge", "run"], env, tmp_path / "run.log")
    running.append(proc)
    assert wait_until(lambda: db_count(database_url, INBOUND) == 1, timeout=30), _log(tmp_path)
    # Mail queued before the bridge started (say, during an SMTP outage) goes out too.
    received = smtp.wait_for(2, timeout=10)
    assert {queued_id} <= {mail.message()["Message-ID"] for mail in received}
    time.sleep(0.5)  # the bridge is in IDLE now

    started = time.monotonic()
    imap_account.append(make_mail("During IDLE"))
    assert wait_until(lambda: db_count(database_url, INBOUND) == 2, timeout=3), _log(tmp_path)
    assert time.monotonic() - started < 3

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert "mail bridge stopped" in _log(tmp_path)


def _queue_a_reply(app: Flask, *, to: str) -> str:
    """An outbound mail left pending in the database, as an SMTP outage would leave it."""
    settings = get_settings()
    case = open_mail_case(
        db.session, team=Team.TRUST_SAFETY, mailbox="ca", sender=to, sender_name=None, subject="x"
    )
    outbound = queue_mail(
        db.session,
        settings,
        str(app.secret_key),
        case=case,
        to=to,
        subject=f"[{case.reference}] Reply",
        text="We looked into it.",
        purpose="reply",
    )
    db.session.commit()
    return outbound.message_id


def test_run_outlives_a_dovecot_restart(
    tmp_path: Path,
    database_url: str,
    dovecot: DovecotServer,
    imap_account: ImapAccount,
    running: list[object],
) -> None:
    env = bridge_env(
        tmp_path,
        PORTAL_DATABASE_URL=database_url,
        PORTAL_IMAP_CA_URL=imap_account.url(),
        PORTAL_MAIL_POLL_SECONDS="300",
        PORTAL_MAIL_RECONNECT_MAX_SECONDS="2",
    )
    imap_account.append(make_mail("Before the outage"))
    proc = start_flask(["mailbridge", "run"], env, tmp_path / "run.log")
    running.append(proc)
    assert wait_until(lambda: db_count(database_url, INBOUND) == 1, timeout=30), _log(tmp_path)

    dovecot.stop()
    time.sleep(1.5)  # the bridge notices and starts backing off
    assert proc.poll() is None, _log(tmp_path)
    dovecot.restart()
    imap_account.append(make_mail("After the outage"))

    assert wait_until(lambda: db_count(database_url, INBOUND) == 2, timeout=20), _log(tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_a_refused_login_is_one_line_naming_the_mailbox_without_the_password(
    tmp_path: Path, imap_account: ImapAccount
) -> None:
    wrong = "not the password%@/ x"
    url = imap_account.url().replace(quote(imap_account.password, safe=""), quote(wrong, safe=""))
    env = bridge_env(tmp_path, PORTAL_IMAP_CA_URL=url)

    result = flask(["mailbridge", "sync", "--once"], env)

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ca: login refused by imap://127.0.0.1:")
    for secret in (wrong, quote(wrong, safe=""), imap_account.password):
        assert secret not in result.stderr


@pytest.mark.parametrize(
    ("url", "expected", "status"),
    [
        ("imap://127.0.0.1:143/INBOX", "ca: the IMAP URL needs USER:PASSWORD@", 2),
        ("pop3://u:secret-pw@127.0.0.1/", "ca: the IMAP URL must start with imap://", 2),
        ("imap://u:secret-pw@127.0.0.1:notaport/", "ca: the IMAP URL is malformed", 2),
        ("imap://u:secret-pw@127.0.0.1:1/INBOX", "ca: cannot connect to imap://127.0.0.1:1/", 1),
    ],
    ids=["no-credentials", "scheme", "port", "refused"],
)
def test_bad_urls_fail_with_one_clear_line(
    tmp_path: Path, url: str, expected: str, status: int
) -> None:
    result = flask(["mailbridge", "sync", "--once"], bridge_env(tmp_path, PORTAL_IMAP_CA_URL=url))

    assert result.returncode == status, result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "secret-pw" not in result.stderr
    assert "Traceback" not in result.stderr


def _log(tmp_path: Path) -> str:
    return "\n".join(
        path.read_text(errors="replace")[-3000:] for path in sorted(tmp_path.glob("*.log"))
    )


# -- issue 10, section 7: the bridge's housekeeping -------------------------------------------


def _marked(marker: str) -> set[tuple[int, str]]:
    """Live processes whose environment carries ``marker``, as (PID, start time) pairs, so a
    recycled PID is never mistaken for one of them. The bridge, its fork server and its
    workers all inherit the environment, and keep it after the bridge dies (orphans too)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        fields = stat.rpartition(")")[2].split()
        if marker.encode() in environ.split(b"\0") and fields[0] != "Z":
            found.add((int(entry.name), fields[19]))  # field 22: start time
    return found


def test_sigkill_of_the_bridge_leaves_no_worker_behind(
    tmp_path: Path, imap_account: ImapAccount, running: list[object]
) -> None:
    """Issue 10: each SIGKILL of the bridge left 3-4 worker processes running. Only the
    bridge is killed here (not its process group), as the OOM killer or ``kill -9`` would."""
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs Linux /proc")
    marker = f"OA_TEST_BRIDGE={tmp_path.name}"
    env = bridge_env(
        tmp_path,
        PORTAL_IMAP_CA_URL=imap_account.url(),
        PORTAL_MAIL_FETCH_BATCH="20",
        PORTAL_MAIL_WORKERS="2",
        OA_TEST_BRIDGE=tmp_path.name,
    )
    assert flask(["db", "upgrade", "heads"], env).returncode == 0
    append_all(
        imap_account,
        (make_mail(f"Worker {n}", sender=f"w{n}@example.net") for n in range(400)),
    )
    proc = start_flask(["mailbridge", "sync", "--once"], env, tmp_path / "sync.log")
    running.append(proc)
    assert wait_until(
        lambda: db_count(env["PORTAL_DATABASE_URL"], INBOUND) > 0, timeout=60, interval=0.01
    )
    helpers = {p for p in _marked(marker) if p[0] != proc.pid}
    assert len(helpers) >= 2, "the workers should be running mid-sync"

    os.kill(proc.pid, signal.SIGKILL)  # the bridge alone
    proc.wait(timeout=10)  # type: ignore[attr-defined]

    assert wait_until(lambda: not (_marked(marker) & helpers), timeout=5), _marked(marker)
