"""The delivery worker: stored jobs, then due mail, round after round (``outbox run``).

Web requests never talk to the mail server: they queue mail (and store jobs) in their own
transaction, and this worker sends it. ``mailbridge run`` delivers due mail on each of its
rounds too, so either process is enough; both may run, on any number of hosts, because every
row is claimed before it is worked.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy.orm import Session

from portal.config import Settings
from portal.services import jobs, outbound

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Round:
    jobs: jobs.JobRound
    mail: outbound.Delivery


def work_once(session: Session, settings: Settings, secret_key: str) -> Round:
    """Run the due jobs (which may queue mail), then send the due mail."""
    ran = jobs.run_due(session, settings, secret_key)
    sent = outbound.deliver_due(session, settings)
    return Round(jobs=ran, mail=sent)


def run(session: Session, settings: Settings, secret_key: str, stop: threading.Event) -> None:
    """Work until ``stop`` is set, waiting ``PORTAL_OUTBOX_POLL_SECONDS`` between rounds."""
    log.info("delivery worker started (every %ss)", settings.outbox_poll_seconds)
    while not stop.is_set():
        try:
            done = work_once(session, settings, secret_key)
        except Exception:
            session.rollback()
            log.exception("delivery round failed; the next round tries again")
        else:
            if done.jobs.done or done.jobs.failed or done.mail.sent or done.mail.failed:
                log.info(
                    "delivery: %s job(s) done, %s failed; %s mail sent, %s failed, %s pending",
                    done.jobs.done,
                    done.jobs.failed,
                    done.mail.sent,
                    done.mail.failed,
                    done.mail.pending,
                )
        session.close()  # no read transaction held open while waiting (SQLite WAL)
        stop.wait(settings.outbox_poll_seconds)
    log.info("delivery worker stopped")
