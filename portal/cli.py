"""``flask --app wsgi ...`` commands: thin wrappers that call services inside the app context.

``db upgrade`` comes from Flask-Migrate; ``mailbridge`` from the mailbridge package.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from portal import first_steps
from portal.backup import BackupError, create_backup, restore_backup
from portal.backup.snapshot import megabytes
from portal.config import get_settings
from portal.extensions import db
from portal.models import Reporter
from portal.policy.roles import Role
from portal.services import audit, delivery, staff
from portal.services.abuse import active_lockouts
from portal.services.export import export_cases

cases_cli = AppGroup("cases", help="Work with cases.")
staff_cli = AppGroup("staff", help="Manage staff accounts.")
outbox_cli = AppGroup("outbox", help="Outgoing mail.")
audit_cli = AppGroup("audit", help="The audit trail.")
lockouts_cli = AppGroup("lockouts", help="Reporters refused for a period after abuse.")
backup_cli = AppGroup("backup", help="Snapshots of the database and every blob it refers to.")


@cases_cli.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl"]),
    default="jsonl",
    show_default=True,
    help="Output format: one JSON object per line.",
)
def export_command(fmt: str) -> None:
    """Print every case with its messages to standard output."""
    for record in export_cases(db.session):
        click.echo(json.dumps(record, ensure_ascii=False))


@staff_cli.command("create")
@click.argument("email")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    # Values, not the enum: click would match an Enum's member names (TRUST_SAFETY).
    type=click.Choice([role.value for role in Role]),
    help="May be given several times.",
)
@click.option("--name", default=None, help="Display name.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def staff_create(
    email: str, roles: tuple[str, ...], name: str | None, password_stdin: bool
) -> None:
    """Create a staff account and print its authenticator (otpauth://) URI."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        created = staff.create_staff(
            db.session, email=email, roles=list(roles), password=password, name=name
        )
    except (staff.StaffError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Created staff account #{created.user.id} ({', '.join(created.user.roles)}).")
    click.echo("Add this to the authenticator app (it is shown once):")
    click.echo(created.provisioning_uri)


@staff_cli.command("disable")
@click.argument("email")
def staff_disable(email: str) -> None:
    """Disable a staff account: it can no longer sign in, and open sessions end."""
    try:
        user = staff.disable_staff(db.session, email)
    except staff.StaffError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Disabled staff account #{user.id}.")


@staff_cli.command("reset-2fa")
@click.argument("email")
def staff_reset_2fa(email: str) -> None:
    """Give a staff account a new TOTP secret and print its otpauth:// URI."""
    try:
        created = staff.reset_two_factor(db.session, email)
    except staff.StaffError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(created.provisioning_uri)


@staff_cli.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def staff_set_password(email: str, password_stdin: bool) -> None:
    """Set a staff account's password; every session of the account ends."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        user = staff.set_password(db.session, email, password)
    except staff.StaffError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"New password set for staff account #{user.id}; its sessions have ended.")


@outbox_cli.command("flush")
def outbox_flush() -> None:
    """Run the stored jobs and send the mail that is due now, once; exit 1 if mail is still
    owed afterwards (pending, or claimed by a worker that died) or failed for good now."""
    done = delivery.work_once(db.session, get_settings(), current_app.secret_key)
    mail = done.mail
    click.echo(f"outbox: {mail.sent} sent, {mail.failed} failed, {mail.pending} pending")
    if done.jobs.done or done.jobs.failed:
        click.echo(f"jobs: {done.jobs.done} done, {done.jobs.failed} failed")
    if mail.pending or mail.failed:
        sys.exit(1)


@outbox_cli.command("run")
def outbox_run() -> None:
    """Keep delivering: stored jobs and due mail every PORTAL_OUTBOX_POLL_SECONDS, until
    SIGTERM or Ctrl-C."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    settings = get_settings()
    target = settings.mail_server or f"files in {settings.outbox_dir}"
    click.echo(f"outbox: delivering to {target}; stop with Ctrl-C", err=True)
    delivery.run(db.session, settings, current_app.secret_key, stop)


@audit_cli.command("verify")
@click.option(
    "--anchor",
    "anchor_line",
    default=None,
    metavar="LINE",
    help="An earlier `audit anchor` line: also fail if the chain no longer extends it.",
)
def audit_verify(anchor_line: str | None) -> None:
    """Check the keyed hash chain of the audit trail; exit 1 and say where it breaks."""
    anchor = None
    if anchor_line is not None:
        try:
            anchor = audit.parse_anchor(anchor_line)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
    broken = [event.id for event in audit.broken_links(db.session)]
    if broken:
        click.echo(f"audit trail BROKEN at event(s): {', '.join(map(str, broken))}", err=True)
        sys.exit(1)
    if anchor is not None and (why := audit.anchor_mismatch(db.session, anchor)):
        click.echo(f"audit trail does NOT match its anchor: {why}", err=True)
        sys.exit(1)
    click.echo("audit trail intact" + (" and extends its anchor" if anchor else ""))


@audit_cli.command("anchor")
def audit_anchor() -> None:
    """Print the chain's head (sequence number, hash, time) as one line to keep elsewhere."""
    click.echo(audit.current_anchor(db.session).line())


@lockouts_cli.command("list")
def lockouts_list() -> None:
    """Print the lockouts in force: reporter id, canonical address, start, end, days."""
    rows = active_lockouts(db.session)
    if not rows:
        click.echo("no active lockouts")
        return
    for lockout in rows:
        reporter = db.session.get_one(Reporter, lockout.reporter_id)
        days = (lockout.ends_at - lockout.starts_at).days
        click.echo(
            f"lockout #{lockout.id}\treporter #{reporter.id}\t{reporter.canonical_email}\t"
            f"{lockout.starts_at:%Y-%m-%d}\tuntil {lockout.ends_at:%Y-%m-%d %H:%M}Z\t{days} days"
        )


def _progress(line: str) -> None:
    click.echo(line, err=True)


@backup_cli.command("create")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def backup_create(directory: Path) -> None:
    """Write a consistent snapshot into DIRECTORY (new or empty) while the portal runs: the
    database, every blob it refers to, and manifest.json with their SHA-256 hashes."""
    settings = get_settings()
    try:
        manifest = create_backup(
            database_url=settings.database_url,
            engine=db.engine,
            blob_dir=settings.blob_dir,
            directory=directory,
            report=_progress,
        )
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    dump = manifest.database
    size = sum(blob.size for blob in manifest.blobs)
    click.echo(
        f"backup written to {directory}: {dump.dialect} database ({megabytes(dump.size)}, "
        f"revision {manifest.alembic_revision or 'none'}), {len(manifest.blobs):,} blobs "
        f"({megabytes(size)}), {len(manifest.staged)} staged files"
    )
    if manifest.missing_staged:
        click.echo(
            f"note: {len(manifest.missing_staged)} staged file(s) were cleared while the backup "
            f"ran, their jobs having finished: {', '.join(manifest.missing_staged[:10])}",
            err=True,
        )
    if manifest.missing_blobs:
        click.echo(
            f"backup INCOMPLETE: {len(manifest.missing_blobs)} blob(s) the database refers to "
            f"are missing or corrupt in PORTAL_BLOB_DIR: {', '.join(manifest.missing_blobs[:10])}",
            err=True,
        )
        sys.exit(1)


@backup_cli.command("restore")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def backup_restore(directory: Path) -> None:
    """Restore the backup in DIRECTORY into an empty database and PORTAL_BLOB_DIR, after
    checking every file against the manifest. Stop the portal's services first."""
    settings = get_settings()
    try:
        done = restore_backup(
            database_url=settings.database_url,
            engine=db.engine,
            blob_dir=settings.blob_dir,
            directory=directory,
            report=_progress,
        )
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    manifest = done.manifest
    counts = ", ".join(f"{count:,} {table}" for table, count in manifest.counts.items())
    click.echo(
        f"restored the backup of {manifest.created_at} (portal {manifest.app_version}, "
        f"revision {manifest.alembic_revision or 'none'}): {counts}; {done.blobs:,} blobs "
        f"({megabytes(done.blob_bytes)}, {done.blobs_present:,} already in place), "
        f"{done.staged} staged files"
    )
    if manifest.missing_blobs:
        click.echo(
            f"warning: {len(manifest.missing_blobs)} blob(s) were already missing when the "
            "backup was taken and are not restored",
            err=True,
        )
    click.echo(
        "next: `flask --app wsgi db upgrade`, then `audit verify` with the same PORTAL_AUDIT_KEY"
    )


def register_cli(app: Flask) -> None:
    for group in (cases_cli, staff_cli, outbox_cli, audit_cli, lockouts_cli, backup_cli):
        app.cli.add_command(group)
    first_steps.register(app)
