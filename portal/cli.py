"""``flask --app wsgi ...`` commands: thin wrappers that call services inside the app context.

``db upgrade`` comes from Flask-Migrate.
"""

from __future__ import annotations

import json

import click
from flask import Flask
from flask.cli import AppGroup

from portal.extensions import db
from portal.services.export import export_cases

cases_cli = AppGroup("cases", help="Work with cases.")


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


def register_cli(app: Flask) -> None:
    app.cli.add_command(cases_cli)
