"""Issue 10, section 5: who wrote this mail. Forged mail through the real Dovecot.

Seen: a mail forged with the requester's From joined their case as the requester, 3 of 3
times; one carrying an attacker-written ``Authentication-Results: …; spf=pass dkim=pass
dmarc=pass`` was shown to staff as passing every check.

Our receiving server is ``mx.example.org`` (``PORTAL_MAIL_AUTHSERV_ID`` in tests.conftest).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from mailbridge.cli import cli as mailbridge_cli
from portal.extensions import db
from portal.models import Appeal, Case, StaffUser
from portal.models.base import utcnow
from tests.appeals_helpers import SUBJECT, decided_case
from tests.conftest import OUR_AUTHSERV_ID
from tests.factories import Auth
from tests.mailbridge_helpers import bridge_env, db_count, flask, inbound, make_mail, sync
from tests.servers.fixtures import ImapAccount
from tests.servers.smtp import SmtpServer

RITA = "rita@example.net"
FORGED_PASS = "mx.attacker.example; spf=pass smtp.mailfrom=example.net; dkim=pass; dmarc=pass"


@pytest.fixture
def app_config(imap_account: ImapAccount, smtp: SmtpServer) -> dict[str, Any]:
    return {
        "IMAP_CA_URL": imap_account.url(),
        "IMAP_APPEALS_URL": None,
        "MAIL_SERVER": smtp.host,
        "MAIL_PORT": smtp.port,
    }


def received(results: str, raw: bytes) -> bytes:
    """``raw`` as a receiving server hands it on: its Authentication-Results on top."""
    return f"Authentication-Results: {results}\r\n".encode() + raw


def ours_pass(domain: str = "example.net") -> str:
    return (
        f"{OUR_AUTHSERV_ID}; spf=pass smtp.mailfrom={domain}; dkim=pass header.d={domain};"
        f" dmarc=pass (p=quarantine) header.from={domain}"
    )


class Started(NamedTuple):
    """Plain values: a sync expunges the session's objects."""

    case_id: int
    reference: str
    message_id: int


def ritas_case(runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer) -> Started:
    """Rita opens a case by mail (her DMARC passes at our server); her acknowledgement goes."""
    first = make_mail(
        "Harassment on my talk page", sender=f"Rita <{RITA}>", message_id="<rita.1@example.net>"
    )
    imap_account.append(received(ours_pass(), first))
    assert sync(runner).exit_code == 0
    smtp.wait_for(1)
    smtp.clear()
    (message,) = inbound()
    assert message.sender_verified is True
    case = db.session.get_one(Case, message.case_id)
    return Started(case.id, case.reference or "", message.id)


# -- a forged From joins as evidence, never as the party -------------------------------------------


@pytest.mark.parametrize("route", ["reference", "in-reply-to", "references"])
def test_a_forged_from_joins_the_case_marked_not_verified(
    app: Flask,
    runner: FlaskCliRunner,
    imap_account: ImapAccount,
    smtp: SmtpServer,
    route: str,
) -> None:
    first = ritas_case(runner, imap_account, smtp)
    threading: dict[str, Any] = {
        "reference": {"subject": f"Re: [{first.reference}] please close my case"},
        "in-reply-to": {"subject": "Re: please close", "in_reply_to": "<rita.1@example.net>"},
        "references": {"subject": "please close", "references": ["<rita.1@example.net>"]},
    }[route]
    subject = threading.pop("subject")
    imap_account.append(make_mail(subject, sender=f"Rita <{RITA}>", **threading))

    assert sync(runner).exit_code == 0

    _, forged = inbound()
    assert forged.case_id == first.case_id  # evidence: on the case staff work on
    assert forged.sender_verified is False
    assert "sender not verified" in (forged.flag_reason or "")
    assert smtp.messages == []


def test_an_attacker_written_pass_is_ignored(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    first = ritas_case(runner, imap_account, smtp)
    forged = make_mail(f"Re: [{first.reference}] withdraw", sender=RITA)
    imap_account.append(received(FORGED_PASS, forged))

    sync(runner)

    _, message = inbound()
    assert message.auth_results == {}
    assert message.sender_verified is False
    assert message.case_id == first.case_id


def test_our_servers_dmarc_pass_verifies_the_sender(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    first = ritas_case(runner, imap_account, smtp)
    mail = make_mail(f"Re: [{first.reference}] more evidence", sender=RITA)
    # An attacker's header below ours changes nothing: ours is on top.
    imap_account.append(received(ours_pass(), received(FORGED_PASS, mail)))

    sync(runner)

    _, message = inbound()
    assert (message.case_id, message.sender_verified) == (first.case_id, True)
    assert message.flag_reason is None
    assert message.auth_results == {"spf": "pass", "dkim": "pass", "dmarc": "pass"}


def test_a_pass_for_another_domain_does_not_verify(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    first = ritas_case(runner, imap_account, smtp)
    mail = make_mail(f"Re: [{first.reference}] close it", sender=RITA)
    imap_account.append(received(ours_pass("attacker.example"), mail))

    sync(runner)

    _, message = inbound()
    assert message.sender_verified is False


def test_a_reply_citing_our_message_id_verifies_the_sender(
    app: Flask, runner: FlaskCliRunner, imap_account: ImapAccount, smtp: SmtpServer
) -> None:
    """No DMARC at all (a small domain), but it answers the mail we sent to that address."""
    imap_account.append(make_mail("Report", sender=f"Rita <{RITA}>"))
    sync(runner)
    (ack,) = smtp.wait_for(1)
    (first,) = inbound()
    assert first.sender_verified is False  # no proof yet: a first mail from a small domain
    case_id = first.case_id

    imap_account.append(
        make_mail("AW: Ihre Nachricht", sender=RITA, in_reply_to=ack.message()["Message-ID"])
    )
    sync(runner)

    _, reply = inbound()
    assert (reply.case_id, reply.sender_verified, reply.flag_reason) == (case_id, True, None)


def test_the_timeline_says_sender_not_verified_in_plain_words(
    app: Flask,
    client: FlaskClient,
    auth: Auth,
    runner: FlaskCliRunner,
    imap_account: ImapAccount,
    smtp: SmtpServer,
    create_staff: Callable[..., StaffUser],
) -> None:
    first = ritas_case(runner, imap_account, smtp)
    case_id = first.case_id
    imap_account.append(
        received(FORGED_PASS, make_mail(f"Re: [{first.reference}] withdraw", sender=RITA))
    )
    sync(runner)
    _, forged = inbound()

    auth.login(create_staff("trust_safety"))
    page = client.get(f"/staff/cases/{case_id}").get_data(as_text=True)

    start = page.index(f'id="message-{forged.id}"')
    forged_item = page[start : page.index("</li>", start)]
    assert "Sender not verified" in forged_item
    assert "Sender checks" not in forged_item  # the attacker's "pass" is shown nowhere
    assert 'class="auth-pass"' not in forged_item
    first_item = page[page.index(f'id="message-{first.message_id}"') :]
    assert "Sender not verified" not in first_item[: first_item.index("</li>")]


@pytest.mark.parametrize("verified", [False, True], ids=["forged", "verified"])
def test_a_party_naming_another_teams_case_is_acknowledged_only_when_verified(
    app: Flask,
    runner: FlaskCliRunner,
    imap_account: ImapAccount,
    smtp: SmtpServer,
    create_case: Callable[..., Case],
    verified: bool,
) -> None:
    """A new, linked case for Legal's case; its acknowledgement would go to the party's
    address on the word of whoever wrote the From."""
    legal = create_case("dmca", requester_email=RITA)
    reference, legal_id = legal.reference, legal.id
    mail = make_mail(f"About [{reference}]", sender=RITA)
    imap_account.append(received(ours_pass(), mail) if verified else mail)

    sync(runner)

    (message,) = [m for m in inbound() if m.channel == "mail"]
    assert db.session.get_one(Case, message.case_id).linked_case_id == legal_id
    assert message.sender_verified is verified
    assert ("sender not verified" in (message.flag_reason or "")) is not verified
    if verified:
        (ack,) = smtp.wait_for(1)
        assert ack.rcpt_tos == [RITA]
    else:
        assert smtp.messages == []


# -- appeals@: an unverified party gets nothing automatic ------------------------------------------


@pytest.fixture
def appeals_mailbox(app: Flask, imap_account: ImapAccount) -> None:
    settings = app.extensions["portal.settings"]
    app.extensions["portal.settings"] = replace(
        settings, imap_ca_url=None, imap_appeals_url=imap_account.url("Appeals")
    )


def test_a_forged_appeal_by_mail_sends_nothing_and_waits_for_staff(
    app: Flask,
    runner: FlaskCliRunner,
    imap_account: ImapAccount,
    smtp: SmtpServer,
    appeals_mailbox: None,
    create_case: Callable[..., Case],
    create_staff: Callable[..., StaffUser],
) -> None:
    case = decided_case(
        create_case, create_staff("trust_safety"), decided_at=utcnow() - timedelta(days=30)
    )
    reference, case_id = case.reference, case.id
    imap_account.append(
        make_mail(f"Appeal of {reference}", sender=SUBJECT, to="appeals@example.org"),
        folder="Appeals",
    )

    assert sync(runner).exit_code == 0

    (message,) = [m for m in inbound() if m.mailbox == "appeals"]
    inquiry = db.session.get_one(Case, message.case_id)
    assert (inquiry.status, inquiry.linked_case_id) == ("new", case_id)
    assert message.sender_verified is False
    assert "sender not verified" in (message.flag_reason or "")
    assert db.session.scalars(select(Appeal)).all() == []
    assert smtp.messages == []  # no link, no refusal, no acknowledgement to the party


def test_a_verified_appeal_by_mail_gets_its_confirmation_link(
    app: Flask,
    runner: FlaskCliRunner,
    imap_account: ImapAccount,
    smtp: SmtpServer,
    appeals_mailbox: None,
    create_case: Callable[..., Case],
    create_staff: Callable[..., StaffUser],
) -> None:
    case = decided_case(
        create_case, create_staff("trust_safety"), decided_at=utcnow() - timedelta(days=30)
    )
    mail = make_mail(f"Appeal of {case.reference}", sender=SUBJECT, to="appeals@example.org")
    imap_account.append(received(ours_pass(), mail), folder="Appeals")

    sync(runner)

    (confirmation,) = smtp.wait_for(1)
    assert "Please confirm your appeal" in confirmation.message()["Subject"]
    assert confirmation.rcpt_tos == [SUBJECT]


# -- the authserv-id is required to read a mailbox ------------------------------------------------


@pytest.mark.parametrize("command", [["sync", "--once"], ["run"]], ids=["sync", "run"])
@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_the_bridge_refuses_to_start_without_our_authserv_id(
    tmp_path: Path, imap_account: ImapAccount, command: list[str], value: str | None
) -> None:
    """In a process of its own: a ``run`` that starts anyway would never return."""
    env = bridge_env(tmp_path, PORTAL_IMAP_CA_URL=imap_account.url())
    del env["PORTAL_MAIL_AUTHSERV_ID"]
    if value is not None:
        env["PORTAL_MAIL_AUTHSERV_ID"] = value
    assert flask(["db", "upgrade"], env).returncode == 0
    imap_account.append(make_mail("Hello", sender=RITA))

    result = flask(["mailbridge", *command], env, timeout=60)

    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "PORTAL_MAIL_AUTHSERV_ID" in line
    assert db_count(env["PORTAL_DATABASE_URL"]) == 0


def test_a_malformed_authserv_id_is_refused(app: Flask, runner: FlaskCliRunner) -> None:
    app.config["MAIL_AUTHSERV_ID"] = "mx.example.org;"

    result = runner.invoke(mailbridge_cli, ["sync", "--once"])

    assert result.exit_code == 2
    assert "PORTAL_MAIL_AUTHSERV_ID" in result.output


@pytest.mark.parametrize("authserv_id", [None, OUR_AUTHSERV_ID])
def test_import_needs_no_authserv_id_and_trusts_no_results_in_files(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, authserv_id: str | None
) -> None:
    """A file has been wherever it has been: the results in it prove nothing."""
    app.config["MAIL_AUTHSERV_ID"] = authserv_id
    path = tmp_path / "old.eml"
    path.write_bytes(received(ours_pass(), make_mail("Old report", sender=RITA)))

    result = runner.invoke(mailbridge_cli, ["import", str(path)])

    assert result.exit_code == 0, result.output
    (message,) = inbound()
    assert (message.auth_results, message.sender_verified) == ({}, False)
