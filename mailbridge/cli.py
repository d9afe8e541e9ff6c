"""``flask --app wsgi mailbridge sync --once | run | import PATH``: thin wrappers.

Each command reads its arguments, builds the pieces inside the app context Flask gives it,
and calls the library (``mailbridge.sync``, ``runner``, ``importers``). Operator-facing
failures are one line on standard error naming the mailbox, never a traceback and never a
password; the exit status is 1 when a mailbox could not be read at all, 2 for bad usage or
configuration.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from mailbridge.config import (
    MAILBOX_TEAMS,
    BridgeSettings,
    MailboxConfig,
    configured_mailboxes,
    require_authserv_id,
)
from mailbridge.errors import BridgeFault, MailboxConfigError
from mailbridge.imap import CONNECTION_ERRORS, session
from mailbridge.importers import ImportSourceError, import_path
from mailbridge.ingest import Ingestor
from mailbridge.lease import Holder, MailboxLeased, give_back
from mailbridge.runner import StopFlag, Watcher, run_forever, stop_on_signals
from mailbridge.sync import ResyncGuard, sync_folder
from portal.config import get_settings
from portal.extensions import db

log = logging.getLogger(__name__)

cli = AppGroup("mailbridge", help="Ingest the role mailboxes (IMAP) into case timelines.")

_MAILBOX_CHOICE = click.Choice(sorted(MAILBOX_TEAMS))


class ConfigProblem(click.ClickException):
    """Configuration that cannot work: exit status 2, like a usage error."""

    exit_code = 2


def _ingestor(name: str, *, acknowledge: bool, authserv_id: str | None = None) -> Ingestor:
    """``authserv_id`` None trusts no Authentication-Results at all (what import wants)."""
    bridge = BridgeSettings.from_config(current_app.config)
    return Ingestor(
        db.session,
        get_settings(),
        str(current_app.secret_key),
        mailbox=name,
        team=MAILBOX_TEAMS[name],
        acknowledge=acknowledge,
        authserv_id=authserv_id,
        workers=bridge.workers,
        holder=Holder.this_process(bridge.lease_seconds),
    )


def _mailboxes(only: str | None, bridge: BridgeSettings) -> tuple[list[MailboxConfig], str]:
    """The mailboxes to read, and our server's authserv-id, without which none may be read."""
    try:
        configs = configured_mailboxes(get_settings(), only)
        if not configs:
            raise MailboxConfigError(
                "no mailbox configured: set PORTAL_IMAP_CA_URL and/or PORTAL_IMAP_APPEALS_URL"
            )
        return configs, require_authserv_id(bridge)
    except MailboxConfigError as exc:
        raise ConfigProblem(str(exc)) from None


def _database_problem(exc: SQLAlchemyError) -> str:
    """One line for operators; the statement and its parameters (mail data) stay out of it."""
    return (
        f"database error ({type(exc).__name__}); is the schema current? "
        "(flask --app wsgi db upgrade)"
    )


def _sync_one(config: MailboxConfig, bridge: BridgeSettings, authserv_id: str) -> str:
    ingestor = _ingestor(config.name, acknowledge=True, authserv_id=authserv_id)
    try:
        with session(config, timeout=bridge.imap_timeout) as client:
            tally = sync_folder(client, config, db.session, ingestor, bridge, ResyncGuard())
    except CONNECTION_ERRORS as exc:
        db.session.rollback()
        raise BridgeFault(
            f"{config.name}: lost the connection to {config.where} ({type(exc).__name__}); "
            "what was filed before is kept"
        ) from None
    finally:
        _give_back(config.name, ingestor.holder)
    return f"{config.name}: {tally}"


def _give_back(mailbox: str, holder: Holder) -> None:
    """Release the mailbox's lease; never in the way of the error that ended the sync (if the
    database is what failed, the lease runs out, or a restart here takes it over)."""
    db.session.rollback()
    try:
        give_back(db.session, mailbox, holder)
    except SQLAlchemyError:
        db.session.rollback()
        log.debug("%s: lease not given back (database error)", mailbox)


@cli.command("sync")
@click.option("--once", is_flag=True, help="Ingest what is there now and exit (the default).")
@click.option("--mailbox", type=_MAILBOX_CHOICE, help="Only this mailbox.")
def sync_command(once: bool, mailbox: str | None) -> None:
    """Ingest new mail from every configured mailbox, print one line each, and exit."""
    bridge = BridgeSettings.from_config(current_app.config)
    failed = False
    configs, authserv_id = _mailboxes(mailbox, bridge)
    for config in configs:
        try:
            click.echo(_sync_one(config, bridge, authserv_id))
        except MailboxLeased as exc:  # another bridge is on it: nothing wrong
            click.echo(str(exc))
        except BridgeFault as exc:
            failed = True
            click.echo(str(exc), err=True)  # "ca: login refused by imap://host:143/INBOX"
        except SQLAlchemyError as exc:
            db.session.rollback()
            failed = True
            click.echo(f"{config.name}: {_database_problem(exc)}", err=True)
    if failed:
        raise SystemExit(1)


@cli.command("run")
@click.option("--mailbox", type=_MAILBOX_CHOICE, help="Only this mailbox.")
def run_command(mailbox: str | None) -> None:
    """Keep ingesting (IDLE where offered, polling otherwise) until SIGTERM."""
    bridge = BridgeSettings.from_config(current_app.config)
    configs, authserv_id = _mailboxes(mailbox, bridge)
    watchers = [
        Watcher(
            config,
            _ingestor(config.name, acknowledge=True, authserv_id=authserv_id),
            db.session,
            bridge,
        )
        for config in configs
    ]
    stop = StopFlag()
    names = ", ".join(watcher.config.name for watcher in watchers)
    log.info("mail bridge watching %s (poll %.0f s)", names, bridge.poll_seconds)
    try:
        with stop_on_signals(stop):
            run_forever(watchers, db.session, get_settings(), bridge, stop)
    finally:
        for watcher in watchers:
            _give_back(watcher.config.name, watcher.ingestor.holder)


@cli.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--mailbox",
    type=_MAILBOX_CHOICE,
    default="ca",
    show_default=True,
    help="The queue the mail belongs to (and whose de-duplication it shares).",
)
def import_command(path: Path, mailbox: str) -> None:
    """Import an .eml file, an mbox or a Maildir into a mailbox's queue.

    Needs no PORTAL_MAIL_AUTHSERV_ID, and trusts no Authentication-Results in the files, ours
    or not: a file has been wherever it has been, and anyone who held it could have written
    them. Imported mail is verified only by replies to our signed Message-IDs.
    """
    bridge = BridgeSettings.from_config(current_app.config)
    ingestor = _ingestor(mailbox, acknowledge=False, authserv_id=None)
    try:
        tally = import_path(path, ingestor, batch_size=bridge.batch_size)
    except ImportSourceError as exc:
        raise click.ClickException(str(exc)) from None
    except BridgeFault as exc:
        click.echo(f"import stopped: {exc}", err=True)
        raise SystemExit(1) from None
    except SQLAlchemyError as exc:
        click.echo(f"{mailbox}: import stopped: {_database_problem(exc)}", err=True)
        raise SystemExit(1) from None
    click.echo(f"{mailbox}: imported {path.name}: {tally}")
