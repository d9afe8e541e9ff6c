"""Abuse handling: mark, warn, lock out, lift, and ask whether someone is locked out now.

The order is the policy's: a first mark proposes a warning; a mark after a warning proposes a
lockout, whose length comes from portal.policy.propose_lockout_days. Staff confirm or override
(with a written reason); everything is audited, with ids and never addresses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import render_template
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.addresses import canonical_address
from portal.config import Settings
from portal.models import AbuseMark, AbuseWarning, Case, Lockout, Reporter, StaffUser
from portal.models.base import utcnow
from portal.policy import (
    FREQUENCY_WINDOW,
    LOCKOUT_MAX_DAYS,
    AbuseCategory,
    Intent,
    LockoutFactors,
    LockoutProposal,
    Seriousness,
    propose_lockout_days,
)
from portal.services import audit
from portal.services.outbound import queue_mail

log = logging.getLogger(__name__)


class AbuseError(ValueError):
    """An abuse action the rules do not allow, with a message for staff."""


@dataclass(frozen=True)
class NextStep:
    """What the rules propose after a mark: a warning first, a lockout after one."""

    kind: str  # "warning" | "lockout"
    proposal: LockoutProposal | None = None


def active_lockout(session: Session, address: str, now: datetime | None = None) -> Lockout | None:
    """The lockout in force for this address (any spelling of it), if any."""
    now = now or utcnow()
    return session.scalar(
        select(Lockout)
        .join(Reporter, Reporter.id == Lockout.reporter_id)
        .where(
            Reporter.canonical_email == canonical_address(address),
            Lockout.lifted_at.is_(None),
            Lockout.starts_at <= now,
            Lockout.ends_at > now,
        )
        .order_by(Lockout.ends_at.desc())
        .limit(1)
    )


def locked_out_addresses(
    session: Session, addresses: Iterable[str], now: datetime | None = None
) -> set[str]:
    """Which of these addresses (canonical forms) are locked out now: one query per 500."""
    now = now or utcnow()
    canonical = sorted({canonical_address(address) for address in addresses})
    found: set[str] = set()
    for start in range(0, len(canonical), 500):
        found.update(
            session.scalars(
                select(Reporter.canonical_email)
                .join(Lockout, Lockout.reporter_id == Reporter.id)
                .where(
                    Reporter.canonical_email.in_(canonical[start : start + 500]),
                    Lockout.lifted_at.is_(None),
                    Lockout.starts_at <= now,
                    Lockout.ends_at > now,
                )
            )
        )
    return found


def active_lockouts(session: Session, now: datetime | None = None) -> list[Lockout]:
    now = now or utcnow()
    return list(
        session.scalars(
            select(Lockout)
            .where(Lockout.lifted_at.is_(None), Lockout.starts_at <= now, Lockout.ends_at > now)
            .order_by(Lockout.ends_at)
        )
    )


def latest_warning(session: Session, reporter: Reporter) -> AbuseWarning | None:
    return session.scalar(
        select(AbuseWarning)
        .where(AbuseWarning.reporter_id == reporter.id)
        .order_by(AbuseWarning.created_at.desc(), AbuseWarning.id.desc())
        .limit(1)
    )


def mark_abuse(
    session: Session,
    staff: StaffUser,
    *,
    case: Case,
    category: str,
    seriousness: str,
    intent: str,
    note: str,
    message_id: int | None = None,
    now: datetime | None = None,
) -> tuple[AbuseMark, NextStep]:
    """Mark a case (or one of its messages) abusive; the mark attaches to its requester."""
    now = now or utcnow()
    if case.requester_id is None:
        raise AbuseError("This case has no reporter to attach the mark to.")
    mark = AbuseMark(
        reporter_id=case.requester_id,
        case_id=case.id,
        message_id=message_id,
        category=AbuseCategory(category).value,
        seriousness=Seriousness(seriousness).value,
        intent=Intent(intent).value,
        note=note,
        staff_id=staff.id,
        created_at=now,
    )
    session.add(mark)
    session.flush()
    audit.record(
        session,
        actor=audit.staff_actor(staff),
        action="abuse.marked",
        case_id=case.id,
        details={
            "mark_id": mark.id,
            "reporter_id": mark.reporter_id,
            "seriousness": mark.seriousness,
        },
        now=now,
    )
    reporter = session.get_one(Reporter, case.requester_id)
    return mark, next_step(session, reporter, now)


def next_step(session: Session, reporter: Reporter, now: datetime | None = None) -> NextStep:
    now = now or utcnow()
    warning = latest_warning(session, reporter)
    if warning is None:
        return NextStep("warning")
    return NextStep("lockout", lockout_proposal(session, reporter, warning, now))


def lockout_proposal(
    session: Session, reporter: Reporter, warning: AbuseWarning, now: datetime
) -> LockoutProposal:
    marks_since = list(
        session.scalars(
            select(AbuseMark)
            .where(AbuseMark.reporter_id == reporter.id, AbuseMark.created_at > warning.created_at)
            .order_by(AbuseMark.created_at.desc(), AbuseMark.id.desc())
        )
    )
    if not marks_since:
        raise AbuseError("There is no mark since the warning: a lockout needs abuse after it.")
    recent = session.scalar(
        select(func.count(AbuseMark.id)).where(
            AbuseMark.reporter_id == reporter.id, AbuseMark.created_at >= now - FREQUENCY_WINDOW
        )
    )
    submissions = session.scalar(
        select(func.count(Case.id)).where(Case.requester_id == reporter.id)
    )
    marked_cases = session.scalar(
        select(func.count(func.distinct(AbuseMark.case_id))).where(
            AbuseMark.reporter_id == reporter.id
        )
    )
    previous = session.scalar(
        select(func.count(Lockout.id)).where(Lockout.reporter_id == reporter.id)
    )
    return propose_lockout_days(
        LockoutFactors(
            seriousness=Seriousness(marks_since[0].seriousness),
            marks_since_warning=len(marks_since),
            marks_last_30_days=recent or 1,
            proportion_marked=(marked_cases or 0) / max(1, submissions or 0),
            intent=Intent(marks_since[0].intent),
            previous_lockouts=previous or 0,
        )
    )


def warning_text(reporter: Reporter, mark: AbuseMark, policy_url: str) -> str:
    return render_template(
        "mail/abuse_warning.txt", reporter=reporter, mark=mark, policy_url=policy_url
    )


def send_warning(
    session: Session,
    settings: Settings,
    secret_key: str,
    staff: StaffUser,
    *,
    reporter: Reporter,
    mark: AbuseMark,
    text: str,
    now: datetime | None = None,
) -> AbuseWarning:
    """Record the warning and queue it by mail from the team of the case that was marked."""
    now = now or utcnow()
    if mark.case_id is None:
        raise AbuseError("The mark has no case to send the warning from.")
    case = session.get_one(Case, mark.case_id)
    outbound = queue_mail(
        session,
        settings,
        secret_key,
        case=case,
        to=reporter.email,
        subject=f"[{case.reference}] About your messages to the Foundation",
        text=text,
        purpose="warning",
        author_staff_id=staff.id,
        now=now,
    )
    warning = AbuseWarning(
        reporter_id=reporter.id,
        mark_id=mark.id,
        text=text,
        outbound_id=outbound.id,
        staff_id=staff.id,
        created_at=now,
    )
    session.add(warning)
    session.flush()
    audit.record(
        session,
        actor=audit.staff_actor(staff),
        action="abuse.warned",
        case_id=case.id,
        details={"warning_id": warning.id, "reporter_id": reporter.id, "outbound_id": outbound.id},
        now=now,
    )
    return warning


def confirm_lockout(
    session: Session,
    staff: StaffUser,
    *,
    reporter: Reporter,
    override_days: int | None = None,
    override_reason: str | None = None,
    now: datetime | None = None,
) -> Lockout:
    """Lock a reporter out for the proposed length, or for ``override_days`` with a reason."""
    now = now or utcnow()
    warning = latest_warning(session, reporter)
    if warning is None:
        raise AbuseError("A lockout comes only after a warning: send the warning first.")
    proposal = lockout_proposal(session, reporter, warning, now)
    days = proposal.days
    if override_days is not None and override_days != proposal.days:
        if not (override_reason or "").strip():
            raise AbuseError("Give a written reason for a length other than the proposed one.")
        if not 1 <= override_days <= LOCKOUT_MAX_DAYS:
            raise AbuseError(f"A lockout lasts between 1 and {LOCKOUT_MAX_DAYS} days.")
        days = override_days
    lockout = Lockout(
        reporter_id=reporter.id,
        starts_at=now,
        ends_at=now + timedelta(days=days),
        proposed_days=proposal.days,
        factors=[
            {"name": c.name, "value": c.value, "days": c.days} for c in proposal.contributions
        ],
        override_reason=override_reason.strip()
        if days != proposal.days and override_reason
        else None,
        staff_id=staff.id,
        created_at=now,
    )
    session.add(lockout)
    session.flush()
    audit.record(
        session,
        actor=audit.staff_actor(staff),
        action="abuse.locked_out",
        details={
            "lockout_id": lockout.id,
            "reporter_id": reporter.id,
            "days": days,
            "proposed_days": proposal.days,
            "overridden": days != proposal.days,
        },
        now=now,
    )
    log.info("reporter #%s locked out for %s days", reporter.id, days)
    return lockout


def lift_lockout(
    session: Session,
    staff: StaffUser,
    lockout: Lockout,
    *,
    reason: str,
    now: datetime | None = None,
) -> None:
    now = now or utcnow()
    if not reason.strip():
        raise AbuseError("Give a reason for lifting the lockout early.")
    if lockout.lifted_at is not None or lockout.ends_at <= now:
        raise AbuseError("This lockout is no longer in force.")
    lockout.lifted_at = now
    lockout.lifted_by_id = staff.id
    lockout.lift_reason = reason.strip()
    audit.record(
        session,
        actor=audit.staff_actor(staff),
        action="abuse.lockout_lifted",
        details={"lockout_id": lockout.id, "reporter_id": lockout.reporter_id},
        now=now,
    )
