"""``flask --app wsgi first-steps``: what a newcomer does once ``make run`` serves.

``make run`` starts it beside the server; it waits until the address answers, then prints the
steps for this very installation (whether staff accounts exist yet, where mail goes, whether
a mailbox is configured), so the first ten minutes need no README hunting.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import click
from flask import Flask
from sqlalchemy import func, select

from portal.config import get_settings
from portal.extensions import db
from portal.models import StaffUser


def wait_until_serving(url: str, *, timeout: float = 60.0) -> bool:
    """Whether something answers TCP at ``url``'s host and port within ``timeout`` seconds."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def steps(
    *, url: str, staff_accounts: int, mail_server: str, outbox_dir: str, mailbox: bool
) -> str:
    """The text, from the facts of this installation (a pure function: tested directly)."""
    flask = ".venv/bin/flask --app wsgi"
    lines = [f"The portal is running at {url}  (Ctrl-C stops it and the mail worker)", ""]
    if staff_accounts:
        lines.append(f"  1. {staff_accounts} staff account(s) exist; sign in at {url}/staff/login")
    else:
        lines += [
            "  1. Create your staff account (it prints an otpauth:// URI: add it to an",
            "     authenticator app, which then gives the six-digit sign-in codes):",
            f"       {flask} staff create you@example.org --role trust_safety --role admin",
            f"     then sign in at {url}/staff/login",
        ]
    lines.append(f"  2. File a request as the public would: {url}/requests/new")
    if mail_server:
        lines.append(f"  3. Mail (acknowledgements, replies) goes to the SMTP server {mail_server}")
    else:
        lines.append(f"  3. No SMTP server is set: mail is written to {outbox_dir}/ as .eml files")
    if mailbox:
        lines.append(
            f"  4. The mail bridge: {flask} mailbridge sync --once  (or `run` to keep going)"
        )
    else:
        lines += [
            "  4. To see the mail bridge file mail into cases, point it at a mailbox:",
            "       export PORTAL_IMAP_CA_URL='imaps://USER:PASSWORD@HOST:993/INBOX'",
            "       export PORTAL_MAIL_AUTHSERV_ID=your.mail.server",
            f"       {flask} mailbridge sync --once",
        ]
    lines += ["", "README.md has the rest: using it, running it in production, developing it."]
    return "\n".join(lines)


def register(app: Flask) -> None:
    @app.cli.command("first-steps")
    @click.option("--wait", is_flag=True, help="Wait until PORTAL_PUBLIC_URL answers first.")
    def first_steps(wait: bool) -> None:
        """Print what to do next with this installation."""
        settings = get_settings()
        if wait and not wait_until_serving(settings.public_url):
            return  # the server did not come up: its own error is on the screen
        accounts = db.session.scalar(select(func.count(StaffUser.id))) or 0
        click.echo(
            steps(
                url=settings.public_url,
                staff_accounts=accounts,
                mail_server=settings.mail_server,
                outbox_dir=str(settings.outbox_dir),
                mailbox=bool(settings.imap_ca_url or settings.imap_appeals_url),
            ),
            err=True,
        )
