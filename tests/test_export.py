"""``flask --app wsgi cases export --format jsonl``: the fields integrators rely on."""

from __future__ import annotations

import json
from datetime import datetime

from flask.testing import FlaskClient, FlaskCliRunner

from tests.conftest import post_form
from tests.public_data import valid_request


def test_export_prints_one_json_object_per_case(
    client: FlaskClient, runner: FlaskCliRunner
) -> None:
    post_form(client, "/requests/new", valid_request(action="child_protection"))
    post_form(client, "/requests/new", valid_request(action="dmca", prior_attempt_urls=""))
    result = runner.invoke(args=["cases", "export", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert set(first) == {
        "reference",
        "kind",
        "action",
        "team",
        "status",
        "priority",
        "created_at",
        "due_at",
        "messages",
    }
    assert (first["action"], first["team"], first["priority"]) == (
        "child_protection",
        "trust_safety",
        "urgent",
    )
    assert (second["kind"], second["team"]) == ("dmca_notice", "legal")
    for stamp in (first["created_at"], first["due_at"]):
        assert datetime.fromisoformat(stamp).utcoffset() is not None
    web, ack = first["messages"]
    assert set(web) == {"message_id", "from", "subject", "date", "direction", "channel"}
    assert (web["direction"], web["channel"], web["from"]) == (
        "inbound",
        "web",
        "reporter@example.org",
    )
    assert (ack["direction"], ack["channel"]) == ("outbound", "mail")
    assert ack["message_id"].startswith("<oa.")


def test_export_of_an_empty_database_prints_nothing(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["cases", "export"])
    assert (result.exit_code, result.output) == (0, "")
