"""``flask --app wsgi mailbridge ...`` (placeholder until the bridge lands)."""

from flask.cli import AppGroup

cli = AppGroup("mailbridge", help="Ingest the role mailboxes over IMAP.")
