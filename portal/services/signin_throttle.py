"""Throttling staff sign-in in the database, so that every web worker agrees.

The rules (how long a pair waits, the cap per address) are in :mod:`portal.signin`; this module
keeps their state and makes the check-then-write safe with two writers at once::

    claim(email, address)
      ├─ the address made MAX_ATTEMPTS_PER_ADDRESS attempts in the window ─► LoginThrottled
      ├─ the pair's next_attempt_at is still ahead ─────────────────────────► LoginThrottled
      └─ UPDATE login_throttles SET failures = n + 1, next_attempt_at = now + delay_after(n + 1)
           WHERE email = ? AND address = ? AND failures = n        (n: the value just read)
         ... one row: the turn is ours, and COMMITTED before the password is checked
         ... no row: another worker took the turn first; read again
    the password and code are right ─► forgive(): the pair's row and this attempt are deleted

Every attempt is counted as a failure *before* the (slow) Argon2 check and forgiven after, so
two workers can never both pass the same open turn, the database's write lock is not held
while Argon2 runs, and an attempt cut short by a crash counts against the guesser.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from portal.models import LoginAttempt, LoginThrottle
from portal.signin import (
    ADDRESS_WINDOW,
    FORGET_AFTER,
    MAX_ATTEMPTS_PER_ADDRESS,
    delay_after,
)

log = logging.getLogger(__name__)

# Two workers racing for one pair's turn: the loser reads again, and then finds the turn taken.
_CLAIM_TRIES = 5


class LoginThrottled(Exception):
    """Too many failed attempts from here; ``retry_after`` says how long to wait."""

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__(f"too many failed attempts; retry after {retry_after}")
        self.retry_after = max(retry_after, timedelta(seconds=1))


@dataclass(frozen=True)
class Claim:
    """The turn an attempt took; hand it to :func:`forgive` when the attempt was right."""

    email: str
    address: str
    attempt_id: int


def claim(session: Session, *, email: str, address: str, now: datetime) -> Claim:
    """Take this pair's turn, counted as a failure until forgiven. Commits ``session``."""
    _check_address(session, address, now)
    _insert_ignore(session, email=email, address=address, now=now)
    for _ in range(_CLAIM_TRIES):
        row = session.execute(
            select(
                LoginThrottle.failures,
                LoginThrottle.next_attempt_at,
                LoginThrottle.last_attempt_at,
            ).where(LoginThrottle.email == email, LoginThrottle.address == address)
        ).one()
        if row.next_attempt_at > now:
            session.commit()
            raise LoginThrottled(row.next_attempt_at - now)
        failures = 0 if now - row.last_attempt_at >= FORGET_AFTER else row.failures
        taken = session.execute(
            update(LoginThrottle)
            .where(
                LoginThrottle.email == email,
                LoginThrottle.address == address,
                LoginThrottle.failures == row.failures,
            )
            .values(
                failures=failures + 1,
                next_attempt_at=now + delay_after(failures + 1),
                last_attempt_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            break
    else:
        session.commit()
        raise LoginThrottled(delay_after(0))
    attempt = LoginAttempt(email=email, remote_addr=address, created_at=now)
    session.add(attempt)
    session.commit()
    # Counted again after our own attempt is committed: of several attempts racing past the
    # first check, the last to commit sees them all, so no more than the cap get through.
    _check_address(session, address, now, including_ours=True)
    return Claim(email=email, address=address, attempt_id=attempt.id)


def forgive(session: Session, turn: Claim) -> None:
    """The attempt was right: its pair starts again from zero and it no longer counts
    against its address. The caller commits."""
    session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.email == turn.email, LoginThrottle.address == turn.address
        )
    )
    session.execute(delete(LoginAttempt).where(LoginAttempt.id == turn.attempt_id))


def _check_address(
    session: Session, address: str, now: datetime, *, including_ours: bool = False
) -> None:
    since = now - ADDRESS_WINDOW
    recent = (
        select(LoginAttempt.created_at)
        .where(LoginAttempt.remote_addr == address, LoginAttempt.created_at > since)
        .order_by(LoginAttempt.created_at)
    )
    count = session.scalar(select(func.count()).select_from(recent.subquery())) or 0
    allowed = MAX_ATTEMPTS_PER_ADDRESS + (1 if including_ours else 0)
    if count < allowed:
        return
    # The wait until enough of the attempts in the window have aged out of it.
    oldest = session.scalar(recent.offset(count - allowed).limit(1)) or now
    log.warning("staff sign-in throttled for a client address (%d attempts in the window)", count)
    session.commit()
    raise LoginThrottled(oldest + ADDRESS_WINDOW - now)


def _insert_ignore(session: Session, *, email: str, address: str, now: datetime) -> None:
    """Make sure the pair's row exists, without a read-then-insert race (the unique key
    decides) and without a savepoint."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(LoginThrottle)
        .values(email=email, address=address, failures=0, next_attempt_at=now, last_attempt_at=now)
        .on_conflict_do_nothing(index_elements=["email", "address"])
    )
