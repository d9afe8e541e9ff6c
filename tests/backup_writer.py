"""A writer for tests/test_backup.py: the portal at work while a backup runs.

    python -m tests.backup_writer KIND DB_DIR STOP_FILE

Writes into the test's database and blob directory until STOP_FILE exists, then prints how
many writes it made. KIND is ``requests`` (the public form), ``mail`` (the mail bridge
filing messages with attachments: new blobs) or ``appeals`` (appeal filings with a
document, staged for a job that the delivery worker then runs and clears).
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

from mailbridge.cli import cli as mailbridge_cli
from portal.extensions import db
from tests.conftest import csrf_token, make_app, post_form, work_outbox
from tests.mailbridge_helpers import make_mail
from tests.public_data import valid_request

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
CONFIG = {
    "MAIL_WORKERS": 0,
    "APPEAL_RATE_LIMIT": "100000 per hour",
    "APPEAL_ADDRESS_RATE_LIMIT": "100000 per day",
    "APPEAL_PAGE_RATE_LIMIT": "100000 per hour",
    "REQUEST_RATE_LIMIT": "100000 per hour",
}


def main(kind: str, db_dir: str, stop_file: str) -> None:
    app = make_app(Path(db_dir), **CONFIG)
    client = app.test_client()
    runner = app.test_cli_runner()
    stop = Path(stop_file)
    scratch = Path(tempfile.mkdtemp(prefix=f"backup-writer-{kind}-"))
    writes = 0
    while not stop.exists():
        if kind == "requests":
            response = post_form(client, "/requests/new", valid_request(summary=f"Filing {writes}"))
            assert response.status_code == 303, response.status_code
        elif kind == "mail":
            path = scratch / f"{writes}.eml"
            path.write_bytes(
                make_mail(
                    f"Evidence {writes} from {os.getpid()}",
                    attachments=[("log.txt", "text/plain", f"{os.getpid()}:{writes}".encode())],
                )
            )
            result = runner.invoke(mailbridge_cli, ["import", str(path), "--mailbox", "ca"])
            assert result.exit_code == 0, result.output
        else:
            page = client.get("/appeals/new")
            response = client.post(
                "/appeals/new",
                data={
                    "case_reference": "OA-2026-999999",
                    "appellant_email": "subject@example.net",
                    "appellant_role": "subject",
                    "reasons": "The evidence was misread.",
                    "details": "",
                    "website": "",
                    "attachments": [(io.BytesIO(PDF + str(writes).encode()), "evidence.pdf")],
                    "csrf_token": csrf_token(page),
                },
                content_type="multipart/form-data",
            )
            assert response.status_code == 303, response.status_code
            if writes % 3 == 2:  # the delivery worker runs the filings (and clears their files)
                work_outbox(app)
        writes += 1
    with app.app_context():
        db.engine.dispose()
    print(writes)


if __name__ == "__main__":
    main(*sys.argv[1:])
