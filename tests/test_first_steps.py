"""What `make run` prints once it serves (issue: "a newcomer's first ten minutes")."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskCliRunner

from portal.first_steps import steps
from portal.models import StaffUser


def test_a_new_installation_is_told_how_to_make_its_first_account() -> None:
    text = steps(
        url="http://127.0.0.1:5301",
        staff_accounts=0,
        mail_server="",
        outbox_dir="instance/outbox",
        mailbox=False,
    )
    assert "staff create you@example.org --role trust_safety --role admin" in text
    assert "http://127.0.0.1:5301/staff/login" in text
    assert "mail is written to instance/outbox/" in text
    assert "PORTAL_IMAP_CA_URL" in text
    assert "PORTAL_MAIL_AUTHSERV_ID" in text


def test_an_installation_with_staff_and_mail_is_told_where_things_are() -> None:
    text = steps(
        url="http://portal.test",
        staff_accounts=2,
        mail_server="smtp.example.org",
        outbox_dir="x",
        mailbox=True,
    )
    assert "2 staff account(s) exist" in text
    assert "staff create" not in text
    assert "SMTP server smtp.example.org" in text
    assert "mailbridge sync --once" in text
    assert "PORTAL_IMAP_CA_URL" not in text


def test_the_command_reads_this_installation(
    runner: FlaskCliRunner, create_staff: Callable[..., StaffUser]
) -> None:
    create_staff("trust_safety")
    result = runner.invoke(args=["first-steps"])
    assert result.exit_code == 0
    assert "1 staff account(s) exist" in result.output
