"""Which bridge works on a mailbox: a lease in the database, so bridges may run on several hosts.

Two bridges on one mailbox could never store a message twice (the unique keys see to that),
but they would fetch and parse everything twice and trip over each other's commits. So a
bridge takes a mailbox's lease (``MailboxState.lease_owner`` / ``lease_expires_at``) before
syncing it, renews it with every batch it files and on every round of ``mailbridge run``, and
gives it back when it is done. A bridge that dies simply stops renewing: once the lease has
expired, another bridge takes the mailbox over, and a bridge restarted on the same machine
takes it at once when it can prove the holder was a bridge of this machine that died
(``mailbridge.instance``: host and PID alone prove nothing, containers repeat both). The lease
outlasts the longest IDLE wait (``PORTAL_MAIL_LEASE_SECONDS``, 15 minutes by default), so a
live bridge never loses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from mailbridge import instance
from mailbridge.config import LEASE_SECONDS_DEFAULT
from mailbridge.errors import BridgeFault
from portal.models import MailboxState


class MailboxLeased(BridgeFault):
    """Another bridge holds this mailbox: not a failure, the mailbox is being taken care of."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease (``mx1:4242#5f0c9a7e31b2d846``), and for how long at a time."""

    name: str
    seconds: float = LEASE_SECONDS_DEFAULT

    @classmethod
    def this_process(cls, seconds: float = LEASE_SECONDS_DEFAULT) -> Holder:
        """This bridge process: host and PID for people, a random instance id for bridges."""
        return cls(instance.owner_name(), seconds)

    def until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.seconds)


def take(session: Session, mailbox: str, holder: Holder, now: datetime) -> None:
    """Take or renew the lease of ``mailbox`` (whose state row exists) and commit.

    Raises :class:`MailboxLeased`, naming the holder and when its lease ends, when another
    bridge holds it.
    """
    taken = session.execute(
        update(MailboxState)
        .where(
            MailboxState.name == mailbox,
            or_(
                MailboxState.lease_owner.is_(None),
                MailboxState.lease_owner == holder.name,
                MailboxState.lease_expires_at.is_(None),
                MailboxState.lease_expires_at <= now,
            ),
        )
        .values(lease_owner=holder.name, lease_expires_at=holder.until(now))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if taken.rowcount == 1:  # type: ignore[attr-defined]
        return
    row = session.execute(
        select(MailboxState.lease_owner, MailboxState.lease_expires_at).where(
            MailboxState.name == mailbox
        )
    ).first()
    session.rollback()
    other, until = row if row is not None else ("another bridge", None)
    # A predecessor killed on this machine: its lease need not run out before we carry on.
    if other and instance.died_here(other) and _take_from(session, mailbox, other, holder, now):
        return
    who = instance.readable(other) if other else "another bridge"
    when = f" until {until:%Y-%m-%d %H:%M} UTC" if until is not None else ""
    raise MailboxLeased(f"{mailbox}: skipped, {who} is working on it{when}")


def _take_from(session: Session, mailbox: str, other: str, holder: Holder, now: datetime) -> bool:
    taken = session.execute(
        update(MailboxState)
        .where(MailboxState.name == mailbox, MailboxState.lease_owner == other)
        .values(lease_owner=holder.name, lease_expires_at=holder.until(now))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return taken.rowcount == 1  # type: ignore[attr-defined]


def renew(state: MailboxState, holder: Holder, now: datetime) -> None:
    """Extend a lease we hold, in the caller's transaction (the mail bridge: with a batch)."""
    if state.lease_owner == holder.name:
        state.lease_expires_at = holder.until(now)


def give_back(session: Session, mailbox: str, holder: Holder) -> None:
    """Release the lease if we hold it, and commit; another bridge may take the mailbox now."""
    session.execute(
        update(MailboxState)
        .where(and_(MailboxState.name == mailbox, MailboxState.lease_owner == holder.name))
        .values(lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
