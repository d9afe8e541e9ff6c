"""A second web worker, for tests/test_staff_auth_throttle.py: sign-in attempts against the
database of the test that starts it, printed as one JSON list of outcomes.

    python -m tests.signin_worker DB_DIR EMAIL ADDRESS ATTEMPTS NOW_ISO START_AT
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

from argon2 import PasswordHasher

from portal.extensions import db
from portal.services import staff
from tests.conftest import make_app


def main(db_dir: str, email: str, address: str, attempts: str, now: str, start_at: str) -> None:
    staff.set_password_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    app = make_app(Path(db_dir))
    outcomes: list[str] = []
    with app.app_context():
        while time.time() < float(start_at):  # both workers start their attempts together
            time.sleep(0.001)
        for _ in range(int(attempts)):
            try:
                staff.authenticate(
                    db.session,
                    email=email,
                    password="a wrong password",
                    code="000000",
                    remote_addr=address,
                    now=datetime.fromisoformat(now),
                )
                outcomes.append("signed in")
            except staff.LoginRefused:
                outcomes.append("refused")
            except staff.LoginThrottled:
                outcomes.append("throttled")
            db.session.commit()
        db.engine.dispose()
    print(json.dumps(outcomes))


if __name__ == "__main__":
    main(*sys.argv[1:])
