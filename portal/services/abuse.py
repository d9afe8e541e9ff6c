"""Abuse handling: mark, warn, lock out, lift, and ask whether someone is locked out now.

The order is the policy's (portal.policy.abuse): a first mark proposes a warning; a mark after
a warning proposes a lockout, whose length comes from propose_lockout_days. Staff confirm or
override it (with a written reason); everything is audited, with ids and never addresses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import render_template
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.addresses import (
    LARGE_PROVIDERS,
    canonical_address,
    imitated_domain,
    lookalike_key,
    looks_like,
)
from portal.config import Settings
from portal.models import AbuseMark, AbuseWarning, Case, Lockout, Reporter, StaffUser
from portal.models.base import utcnow
from portal.policy.abuse import (
    FREQUENCY_WINDOW,
    AbuseCategory,
    Intent,
    LockoutFactors,
    LockoutProposal,
    Seriousness,
    Step,
    propose_lockout_days,
    why_not_override,
)
from portal.policy.mail import MailPurpose
from portal.services import audit
from portal.services.outbound import queue_mail

log = logging.getLogger(__name__)


class AbuseError(ValueError):
    """An abuse action the rules do not allow, with a message for staff."""


@dataclass(frozen=True)
class NextStep:
    """What the rules propose after a mark, with the lockout's proposed length when it is one."""

    kind: Step
    proposal: LockoutProposal | None = None


@dataclass(frozen=True)
class Screening:
    """What a sender's address means while lockouts are in force."""

    #: the lockout the address falls under: the person's own, in any spelling, or one whose
    #: address it imitates (``jane.doe@gmaıl.com`` for ``janedoe@gmail.com``)
    lockout_id: int | None = None
    #: why staff should look: the address imitates another, in words for staff
    lookalike: str | None = None

    @property
    def quarantine(self) -> bool:
        """Mail from this address is kept out of the queues until staff have read it."""
        return self.lockout_id is not None or self.lookalike is not None


class LockoutScreen:
    """The lockouts in force (a handful of rows, loaded once) against which any number of
    addresses are screened: the mail bridge builds one per batch, a form one per filing.

    An address falls under a lockout when its canonical form is the locked-out reporter's, or
    when it looks like it (UTS #39 skeletons, ``portal.addresses.lookalike_key``). An address
    whose domain imitates a large mail provider or a locked-out reporter's domain is a
    look-alike too, whoever it names: staff read that mail before it goes anywhere. The words
    for staff name a provider, never a reporter's address or own domain.
    """

    def __init__(self, locked: Iterable[tuple[int, str]]) -> None:
        self._exact: dict[str, int] = {}
        self._lookalike: dict[str, list[tuple[int, str]]] = {}
        domains: set[str] = set()
        for lockout_id, canonical in locked:
            self._exact.setdefault(canonical, lockout_id)
            self._lookalike.setdefault(lookalike_key(canonical), []).append((lockout_id, canonical))
            domains.add(canonical.rpartition("@")[2])
        self._domains = sorted(domains - {""})

    @classmethod
    def load(cls, session: Session, now: datetime | None = None) -> LockoutScreen:
        now = now or utcnow()
        rows = session.execute(
            select(Lockout.id, Reporter.canonical_email)
            .join(Reporter, Reporter.id == Lockout.reporter_id)
            .where(Lockout.lifted_at.is_(None), Lockout.starts_at <= now, Lockout.ends_at > now)
            .order_by(Lockout.ends_at.desc())  # the longest first, where two would match
        )
        return cls((lockout_id, canonical) for lockout_id, canonical in rows)

    def screen(self, address: str) -> Screening:
        canonical = canonical_address(address)
        exact = self._exact.get(canonical)
        if exact is not None:
            return Screening(lockout_id=exact)
        if "@" not in canonical:
            return Screening()
        domain = canonical.rpartition("@")[2]
        imitated = imitated_domain(domain, self._domains)
        lockout_id = next(
            (
                lockout_id
                for lockout_id, locked in self._lookalike.get(lookalike_key(canonical), [])
                if looks_like(canonical, locked)
            ),
            None,
        )
        if imitated is None:
            if lockout_id is None:
                return Screening()
            return Screening(
                lockout_id,
                "the address looks like a locked-out reporter's, with look-alike characters",
            )
        resembles = (
            f"looks like {imitated}"
            if imitated in LARGE_PROVIDERS
            else "looks like the domain of a locked-out reporter"
        )
        if lockout_id is not None:
            return Screening(
                lockout_id,
                f"the domain {domain} {resembles}: the address imitates a locked-out reporter's",
            )
        return Screening(None, f"the domain {domain} {resembles}: a look-alike domain")


def screen(session: Session, address: str, now: datetime | None = None) -> Screening:
    """Screen one address against the lockouts in force (see :class:`LockoutScreen`)."""
    return LockoutScreen.load(session, now).screen(address)


def active_lockout(session: Session, address: str, now: datetime | None = None) -> Lockout | None:
    """The lockout in force for this address (any spelling of it, or a look-alike of it)."""
    lockout_id = screen(session, address, now).lockout_id
    return session.get(Lockout, lockout_id) if lockout_id is not None else None


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
        return NextStep(Step.WARNING)
    return NextStep(Step.LOCKOUT, lockout_proposal(session, reporter, warning, now))


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
        purpose=MailPurpose.WARNING,
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
        refusal = why_not_override(override_days, override_reason)
        if refusal is not None:
            raise AbuseError(refusal)
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
