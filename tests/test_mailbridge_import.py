"""Issue 3: ``mailbridge import`` of .eml files, mboxes and Maildirs from an older system,
de-duplicated against mail the bridge already fetched over IMAP (and the other way round)."""

from __future__ import annotations

import mailbox
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from mailbridge.cli import cli as mailbridge_cli
from portal.extensions import db
from portal.models import Case, OutboundMail
from tests.mailbridge_helpers import append_all, inbound, make_mail, sync
from tests.servers.fixtures import ImapAccount


@pytest.fixture
def app_config(imap_account: ImapAccount) -> dict[str, Any]:
    return {"IMAP_CA_URL": imap_account.url()}


def run_import(runner: FlaskCliRunner, path: Path, *args: str) -> str:
    result = runner.invoke(mailbridge_cli, ["import", str(path), *args])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def as_exported(raw: bytes) -> bytes:
    """What an older system's export holds: LF line ends (and mbox adds ``>From`` quoting)."""
    return raw.replace(b"\r\n", b"\n")


def test_mbox_import_skips_what_imap_already_brought_and_is_idempotent(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, tmp_path: Path
) -> None:
    with_id = make_mail("Has an ID", sender="sam@example.net", body="From here on, trouble.")
    without_id = make_mail("No ID", sender="tia@example.net", with_message_id=False)
    append_all(imap_account, [with_id, without_id])
    sync(runner)

    path = tmp_path / "history.mbox"
    box = mailbox.mbox(path)
    for raw in (with_id, without_id, make_mail("Only in the archive", sender="uma@example.net")):
        box.add(as_exported(raw))  # also quotes the body's "From here" as ">From here"
    box.close()

    assert run_import(runner, path) == (
        "ca: imported history.mbox: 1 new, 2 already stored, 0 flagged (1 cases opened)"
    )
    assert run_import(runner, path).startswith("ca: imported history.mbox: 0 new, 3 already")
    stored = inbound()
    assert len(stored) == 3
    assert (stored[-1].subject, stored[-1].uid, stored[-1].mailbox) == (
        "Only in the archive",
        None,
        "ca",
    )
    # History gets no acknowledgements: only the two IMAP messages were answered.
    assert db.session.scalar(select(func.count()).select_from(OutboundMail)) == 2


def test_imap_after_a_maildir_import_recognises_the_mail_and_records_its_uid(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, tmp_path: Path
) -> None:
    raws = [make_mail(f"Old {n}", sender=f"v{n}@example.net") for n in range(2)]
    box = mailbox.Maildir(tmp_path / "Maildir")
    for raw in raws:
        box.add(raw)

    assert run_import(runner, tmp_path / "Maildir").startswith("ca: imported Maildir: 2 new")
    append_all(imap_account, raws)
    result = sync(runner)

    assert result.output.strip() == "ca: 0 new, 2 already stored, 0 flagged (0 cases opened)"
    assert sorted(m.uid or 0 for m in inbound()) == [1, 2]
    assert {m.uidvalidity for m in inbound()} == {imap_account.uidvalidity()}


def test_a_single_eml_is_imported_into_the_named_queue(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "appeal.eml"
    path.write_bytes(make_mail("Please reconsider", sender="wes@example.net"))

    assert run_import(runner, path, "--mailbox", "appeals").startswith(
        "appeals: imported appeal.eml: 1 new"
    )
    (message,) = inbound()
    assert message.mailbox == "appeals"
    assert db.session.get_one(Case, message.case_id).team == "appeals"


def test_imported_threads_follow_the_same_rules(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "thread.mbox"
    box = mailbox.mbox(path)
    box.add(make_mail("Start", sender="xia@example.net", message_id="<t.1@example.net>"))
    box.add(make_mail("Re: Start", sender="xia@example.net", in_reply_to="<t.1@example.net>"))
    box.add(make_mail("Re: Start", sender="intruder@example.net", in_reply_to="<t.1@example.net>"))
    box.close()

    run_import(runner, path)

    first, reply, intruder = inbound()
    assert reply.case_id == first.case_id
    assert intruder.case_id != first.case_id


def test_a_directory_that_is_not_a_maildir_is_refused(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(mailbridge_cli, ["import", str(tmp_path)])
    assert result.exit_code == 1
    assert "not a Maildir" in result.output
