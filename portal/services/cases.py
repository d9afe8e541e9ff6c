"""Opening cases and adding to their timelines; :func:`add_case` is how every new case is stored."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from portal.addresses import canonical_address
from portal.models import Case, CaseParty, Message, Reporter
from portal.models.base import utcnow
from portal.models.case import SUMMARY_MAX_CHARS
from portal.models.message import Channel, Direction
from portal.policy.actions import ActionType, CaseKind, CaseStatus, Priority, due_at, rule_for
from portal.policy.references import format_reference
from portal.policy.roles import PartyRole
from portal.policy.routing import Team
from portal.services import audit
from portal.services.bulk import RowIds

log = logging.getLogger(__name__)

_LOOKUP_CHUNK = 500  # addresses per IN (...), far below any database's parameter limit


@dataclass(frozen=True)
class RequestSubmission:
    """What a person asked for on the web form, already validated and normalised."""

    action: ActionType
    summary: str
    requester_email: str
    requester_name: str | None = None
    details: str | None = None
    evidence_urls: list[str] = field(default_factory=list)
    prior_attempt_urls: list[str] = field(default_factory=list)
    no_prior_attempt_reason: str | None = None
    scope_location: str | None = None
    scope_project: str | None = None
    scope_until: date | None = None


def find_or_create_reporter(session: Session, address: str, name: str | None = None) -> Reporter:
    """The person behind ``address`` (any spelling of it), made on first sight.

    Two first sights at once (a person filing twice in a second, two staff filing their mail)
    must make one person: the row is inserted with ON CONFLICT DO NOTHING, which waits for the
    other writer, and then read back, whoever made it.
    """
    canonical = canonical_address(address)
    query = select(Reporter).where(Reporter.canonical_email == canonical)
    reporter = session.scalar(query)
    if reporter is None:
        _insert_reporter(session, canonical=canonical, email=address, name=name)
        reporter = session.scalars(query).one()
    _seen_again(reporter, address, name)
    return reporter


def _insert_reporter(session: Session, *, canonical: str, email: str, name: str | None) -> None:
    values = {"canonical_email": canonical, "email": email, "name": name, "created_at": utcnow()}
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        session.execute(sqlite_insert(Reporter).values(**values).on_conflict_do_nothing())
    elif dialect == "postgresql":
        session.execute(postgresql_insert(Reporter).values(**values).on_conflict_do_nothing())
    else:
        session.add(Reporter(**values))
        session.flush()


def _seen_again(reporter: Reporter, address: str, name: str | None) -> None:
    """Replies go to the address the person last wrote from, under the name they last gave."""
    reporter.email = address
    reporter.name = name or reporter.name


class ReporterBook:
    """:func:`find_or_create_reporter` for a batch of senders: one query for all of them, and
    new reporters take their ids from ``ids`` instead of a flush each (the mail bridge)."""

    def __init__(self, session: Session, addresses: Iterable[str], ids: RowIds) -> None:
        self._session = session
        self._ids = ids
        canonical = sorted({canonical_address(a) for a in addresses if "@" in a})
        self._known: dict[str, Reporter] = {}
        for start in range(0, len(canonical), _LOOKUP_CHUNK):
            chunk = canonical[start : start + _LOOKUP_CHUNK]
            for reporter in session.scalars(
                select(Reporter).where(Reporter.canonical_email.in_(chunk))
            ):
                self._known[reporter.canonical_email] = reporter

    def find_or_create(self, address: str, name: str | None = None) -> Reporter:
        canonical = canonical_address(address)
        reporter = self._known.get(canonical)
        if reporter is not None:
            _seen_again(reporter, address, name)
            return reporter
        reporter = Reporter(
            id=self._ids.take(Reporter), canonical_email=canonical, email=address, name=name
        )
        self._session.add(reporter)
        self._known[canonical] = reporter
        return reporter


def add_case(session: Session, case: Case, requester: Reporter | None) -> Case:
    """Store a new case: its id (flushed, unless handed out already), its reference from
    that id, and its requester as its first party, so their replies thread into it."""
    session.add(case)
    if case.id is None:
        session.flush()
    assign_reference(case)
    if requester is not None:
        session.add(
            CaseParty(
                case_id=case.id, address=requester.canonical_email, role=PartyRole.REQUESTER.value
            )
        )
    return case


def assign_reference(case: Case) -> str:
    """Give a flushed case its reference, from the year it was opened and its id."""
    if case.id is None:
        raise ValueError("flush the case before assigning its reference")
    case.reference = format_reference(case.created_at.year, case.id)
    return case.reference


def open_request(
    session: Session, submission: RequestSubmission, *, now: datetime | None = None
) -> Case:
    """Open a case for a web request: routed, clocked, audited, with the submission on its
    timeline. The caller commits, then sends the acknowledgement."""
    now = now or utcnow()
    rule = rule_for(submission.action)
    reporter = find_or_create_reporter(
        session, submission.requester_email, submission.requester_name
    )
    case = Case(
        kind=rule.kind,
        action=rule.action,
        team=rule.team,
        status=CaseStatus.NEW,
        priority=rule.priority,
        due_at=due_at(rule.action, now),
        requester_id=reporter.id,
        requester_name=submission.requester_name,
        summary=submission.summary,
        details=submission.details,
        evidence_urls=list(submission.evidence_urls),
        prior_attempt_urls=list(submission.prior_attempt_urls),
        no_prior_attempt_reason=submission.no_prior_attempt_reason,
        scope_location=submission.scope_location,
        scope_project=submission.scope_project,
        scope_until=submission.scope_until,
        created_at=now,
        updated_at=now,
    )
    add_case(session, case, reporter)
    session.add(
        Message(
            case_id=case.id,
            direction=Direction.INBOUND,
            channel=Channel.WEB,
            sender=submission.requester_email,
            sender_name=submission.requester_name,
            subject=f"{rule.label} request",
            body_text=render_submission_text(submission),
            sent_at=now,
            created_at=now,
        )
    )
    audit.record(
        session,
        actor="public",
        action="case.opened",
        case_id=case.id,
        details={
            "reference": case.reference,
            "channel": Channel.WEB,
            "action": rule.action.value,
            "team": rule.team.value,
            "priority": rule.priority.value,
        },
        now=now,
    )
    log.info("opened %s (%s, %s) from the web form", case.reference, rule.action, rule.team)
    return case


def render_submission_text(submission: RequestSubmission) -> str:
    """The submission as plain text: the first message on the timeline and the ack's quote."""
    rule = rule_for(submission.action)
    lines = [f"Action requested: {rule.label}", "", "Summary:", submission.summary, ""]
    if rule.event_scope:
        lines += [
            f"Event ban scope: location: {submission.scope_location or '-'}; "
            f"project: {submission.scope_project or '-'}; "
            f"until: {submission.scope_until.isoformat() if submission.scope_until else '-'}",
            "",
        ]
    if submission.evidence_urls:
        lines += ["Evidence:", *submission.evidence_urls, ""]
    if submission.prior_attempt_urls:
        lines += ["Attempts through local community processes:", *submission.prior_attempt_urls, ""]
    if submission.no_prior_attempt_reason:
        lines += ["Why there were no prior attempts:", submission.no_prior_attempt_reason, ""]
    if submission.details:
        lines += ["Further details:", submission.details, ""]
    return "\n".join(lines).rstrip() + "\n"


def open_mail_case(
    session: Session,
    *,
    team: Team,
    mailbox: str,
    sender: str | None,
    sender_name: str | None,
    subject: str | None,
    linked_case_id: int | None = None,
    linked_reference: str | None = None,
    actor: str = "mailbridge",
    now: datetime | None = None,
    ids: RowIds | None = None,
    reporters: ReporterBook | None = None,
) -> Case:
    """Open an inquiry for mail that belongs to no case yet, in the queue of its mailbox.

    The sender becomes the requester and the case's first party, so that their replies (and
    only theirs) thread into it by reference. ``linked_case_id`` records the case the mail
    named but may not join (a stranger quoting a reference, another team's case); staff
    decide whether the two belong together. ``actor`` is who opens it for the audit trail:
    the bridge, or ``staff:<id>`` releasing mail from quarantine. The caller adds the message
    and commits. With ``ids`` and ``reporters`` (a batch holding the write lock), nothing is
    flushed: the case and a new reporter are named up front and inserted with the batch.
    """
    now = now or utcnow()
    reporter: Reporter | None = None
    if sender and "@" in sender:
        reporter = (
            reporters.find_or_create(sender, sender_name)
            if reporters is not None
            else find_or_create_reporter(session, sender, sender_name)
        )
    case = Case(
        id=ids.take(Case) if ids is not None else None,
        kind=CaseKind.INQUIRY,
        action=None,
        team=team,
        status=CaseStatus.NEW,
        priority=Priority.NORMAL,
        due_at=None,
        requester_id=reporter.id if reporter else None,
        requester_name=sender_name,
        summary=(subject or "")[:SUMMARY_MAX_CHARS] or None,
        linked_case_id=linked_case_id,
        created_at=now,
        updated_at=now,
    )
    add_case(session, case, reporter)
    details: dict[str, str] = {
        "reference": case.reference or "",
        "channel": Channel.MAIL,
        "kind": CaseKind.INQUIRY.value,
        "team": team.value,
        "mailbox": mailbox,
    }
    if linked_reference:
        details["linked_reference"] = linked_reference
    audit.record(
        session, actor=actor, action="case.opened", case_id=case.id, details=details, now=now
    )
    # Debug only: the bridge opens thousands in a sync, each in the audit trail and counted
    # in the batch's summary line.
    log.debug("opened %s (%s) from mail in %s", case.reference, team, mailbox)
    return case
