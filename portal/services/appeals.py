"""Filing an appeal, on the web or by mail, and confirming it by a single-use link.

The life of an appeal::

    filed (web form, or mail to appeals@ naming a reference)
      │  is the appellant a party, in the role they claim?   no ─► nothing sent, neutral answer
      │  do the rules (portal.appeals) allow it?             no ─► refused: the reason, by mail
      ▼
    pending ── link followed within 48 h ──► open: an appeal case in the reviewers' queue
      │                                        (or Trust & Safety's, or Legal's: see route)
      └── never followed ──► stays pending, expired; reaches no one

Whether a case exists and who its parties are is never shown to the person filing: every
answer that depends on it goes by mail to the address on record for the role claimed, and
the web page says the same to everyone. The caller commits; the delivery worker sends the mail.
The review itself (outcomes, the restricted view) is in :mod:`portal.services.appeal_review`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from portal.config import Settings
from portal.models import Appeal, Attachment, Case, Message
from portal.models.base import utcnow
from portal.models.case import SUMMARY_MAX_CHARS
from portal.models.message import Channel, Direction
from portal.policy.actions import CaseKind, CaseStatus, Priority, rule_for
from portal.policy.appeals import (
    ROUTE_TEAM,
    AppealState,
    AppellantRole,
    Assessment,
    Route,
    format_day,
)
from portal.policy.mail import MailPurpose
from portal.policy.references import named_reference
from portal.services import audit, jobs
from portal.services.appeal_checks import (
    Confirmed,
    address_on_record,
    assess_case,
    confirmation_url,
    find_case,
    make_token,
    pending_appeal_for,
    role_of_sender,
)
from portal.services.cases import add_case, find_or_create_reporter
from portal.services.outbound import queue_template_mail, thread_under
from portal.storage import BlobStore, StagingArea

log = logging.getLogger(__name__)

ROLE_LABELS = {
    AppellantRole.REQUESTER: "the person who asked for the office action",
    AppellantRole.SUBJECT: "the person the case is about",
}


# -- what comes in and what goes out -----------------------------------------------------------


@dataclass(frozen=True)
class UploadedFile:
    """A file from the appeal form, already checked for type and size (portal.public.forms)."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class AppealFiling:
    """An appeal as typed on the web form, validated and normalised."""

    case_reference: str
    appellant_email: str
    role: AppellantRole
    reasons: str
    details: str | None = None
    attachments: Sequence[UploadedFile] = ()


class Filed(StrEnum):
    #: unknown reference, another address, or not a party: nothing was sent to anyone
    NO_MATCH = "no_match"
    #: a party, but the rules refuse: the reason went to the address on record
    REFUSED = "refused"
    #: a party, eligible: the confirmation link went to the address on record
    CONFIRMATION_SENT = "confirmation_sent"
    #: mail only: no reference named; it stays an appeals inquiry for staff to match by hand
    NO_REFERENCE = "no_reference"
    #: mail only: not a first message in the appeals mailbox (a reply, or handled already)
    NOT_NEW = "not_new"
    #: mail only: automatic mail, a bounce, or a From that failed DMARC: never answered
    IGNORED = "ignored"
    #: mail only: the From is a party's, but nothing proves the party wrote it (see
    #: ``Message.sender_verified``): nothing is sent; the inquiry waits for staff, linked
    UNVERIFIED = "unverified"


@dataclass(frozen=True)
class FilingResult:
    """What happened. The caller commits, then delivers ``outbound_ids`` (never shows
    ``result`` to a web visitor: that would say whether the case exists)."""

    result: Filed
    outbound_ids: list[int] = field(default_factory=list)
    appeal_id: int | None = None


@dataclass(frozen=True)
class Confirmation:
    status: Confirmed
    reference: str | None = None  # the appeal case's reference
    message: str | None = None  # the refusal, shown to a person who proved the address
    due_at: datetime | None = None
    outbound_ids: list[int] = field(default_factory=list)


# -- filing on the web ----------------------------------------------------------------------

JOB_FILE_APPEAL = "appeal.file"


def queue_filing(
    session: Session, settings: Settings, filing: AppealFiling, *, now: datetime | None = None
) -> None:
    """Store a web filing as a job for the delivery worker, which runs :func:`file_appeal`.

    The web request only does this, the same work whatever the filing matches, so neither its
    answer nor its timing tells a visitor whether a case exists; and a web worker killed right
    after answering loses nothing, because the filing is stored before the answer goes out.
    """
    now = now or utcnow()
    staged = StagingArea(settings.blob_dir).put([f.data for f in filing.attachments])
    jobs.enqueue(
        session,
        JOB_FILE_APPEAL,
        {
            "case_reference": filing.case_reference,
            "appellant_email": filing.appellant_email,
            "role": filing.role.value,
            "reasons": filing.reasons,
            "details": filing.details,
            "filed_at": now.isoformat(),
            "staged": staged,
            "files": [
                {"filename": f.filename, "content_type": f.content_type} for f in filing.attachments
            ],
        },
        now=now,
    )


def file_appeal_job(
    session: Session, settings: Settings, secret_key: str, payload: dict[str, Any]
) -> Callable[[], None]:
    """The stored job of :func:`queue_filing`: the filing, checked and answered by mail.

    The staged files are discarded once the job's transaction has committed (what the appeal
    keeps is in the blob store by then); before that, a retry still needs them.
    """
    staging = StagingArea(settings.blob_dir)
    staged = str(payload["staged"])
    filing = AppealFiling(
        case_reference=payload["case_reference"],
        appellant_email=payload["appellant_email"],
        role=AppellantRole(payload["role"]),
        reasons=payload["reasons"],
        details=payload.get("details"),
        attachments=[
            UploadedFile(f["filename"], f["content_type"], staging.read(staged, index))
            for index, f in enumerate(payload.get("files") or [])
        ],
    )
    file_appeal(
        session, settings, secret_key, filing, now=datetime.fromisoformat(payload["filed_at"])
    )
    return lambda: staging.discard(staged)


def file_appeal(
    session: Session,
    settings: Settings,
    secret_key: str,
    filing: AppealFiling,
    *,
    now: datetime | None = None,
) -> FilingResult:
    """Check a web filing and answer by mail only: a confirmation link, a refusal, or nothing.

    Mail about a case goes on that case's timeline, so its team sees who tried to appeal and
    what they were told; the appeal gets a case of its own once confirmed.
    """
    now = now or utcnow()
    case = find_case(session, filing.case_reference)
    address = (
        address_on_record(session, case, filing.role, filing.appellant_email) if case else None
    )
    if case is None or address is None:
        if case is not None:
            audit.record(
                session,
                actor="public",
                action="appeal.unmatched",
                case_id=case.id,
                details={"channel": Channel.WEB, "role": filing.role.value},
                now=now,
            )
        log.info("appeal filed on the web matched no party of any case")
        return FilingResult(Filed.NO_MATCH)

    assessment = assess_case(session, case, filed_at=now)
    appeal = Appeal(
        case_id=case.id,
        role=filing.role.value,
        channel=Channel.WEB,
        appellant_email=address,
        filed_at=now,
        created_at=now,
    )
    if not assessment.eligible:
        return _refuse(session, settings, secret_key, appeal, case, assessment, now=now)

    appeal.reasons = filing.reasons
    appeal.details = filing.details
    appeal.attachments = _store_files(settings, filing.attachments)
    return _ask_for_confirmation(session, settings, secret_key, appeal, case, assessment, now=now)


def _store_files(settings: Settings, uploads: Sequence[UploadedFile]) -> list[dict[str, Any]]:
    """Into the blob store now (only for an eligible party's filing); Attachment rows follow
    on the appeal's first message when the appeal is confirmed."""
    blobs = BlobStore(settings.blob_dir)
    stored = []
    for upload in uploads:
        blob = blobs.put(upload.data)
        stored.append(
            {
                "filename": upload.filename,
                "content_type": upload.content_type,
                "size": blob.size,
                "sha256": blob.sha256,
            }
        )
    return stored


def _ask_for_confirmation(
    session: Session,
    settings: Settings,
    secret_key: str,
    appeal: Appeal,
    case: Case,
    assessment: Assessment,
    *,
    now: datetime,
    answer_on: Case | None = None,
    answering: Message | None = None,
) -> FilingResult:
    appeal.state = AppealState.PENDING
    appeal.route = assessment.route.value if assessment.route else None
    appeal.route_reason = assessment.route_reason
    appeal.nonce = secrets.token_urlsafe(24)
    appeal.expires_at = now + timedelta(hours=settings.appeal_confirm_hours)
    session.add(appeal)
    session.flush()
    context = {
        "case": case,
        "role_label": ROLE_LABELS[AppellantRole(appeal.role)],
        "channel": appeal.channel,
        "link": confirmation_url(settings, make_token(secret_key, appeal)),
        "hours": settings.appeal_confirm_hours,
        "expires_at": appeal.expires_at,
        "site_name": settings.site_name,
    }
    mail = _answer_appellant(
        session,
        settings,
        secret_key,
        appeal,
        case,
        text="Please confirm your appeal",
        template="appeal_confirm",
        context=context,
        purpose=MailPurpose.APPEAL_CONFIRMATION,
        action="appeal.filed",
        details={"role": appeal.role},
        now=now,
        answer_on=answer_on,
        answering=answering,
    )
    log.info(
        "appeal #%s of %s filed (%s): confirmation sent", appeal.id, case.reference, appeal.channel
    )
    return FilingResult(Filed.CONFIRMATION_SENT, [mail], appeal.id)


def _refuse(
    session: Session,
    settings: Settings,
    secret_key: str,
    appeal: Appeal,
    case: Case,
    assessment: Assessment,
    *,
    now: datetime,
    answer_on: Case | None = None,
    answering: Message | None = None,
) -> FilingResult:
    """Record the refusal (without the person's text: it will never be reviewed) and mail the
    reason to the address on record."""
    appeal.state = AppealState.REFUSED
    appeal.refusal = assessment.refusal.value if assessment.refusal else None
    session.add(appeal)
    session.flush()
    context = {
        "case": case,
        "reason": assessment.message(legal_address=settings.address_legal),
        "site_name": settings.site_name,
    }
    mail = _answer_appellant(
        session,
        settings,
        secret_key,
        appeal,
        case,
        text="Your appeal cannot be reviewed",
        template="appeal_refused",
        context=context,
        purpose=MailPurpose.APPEAL_REFUSAL,
        action="appeal.refused",
        details={"refusal": appeal.refusal},
        now=now,
        answer_on=answer_on,
        answering=answering,
    )
    log.info("appeal #%s of %s refused (%s)", appeal.id, case.reference, appeal.refusal)
    return FilingResult(Filed.REFUSED, [mail], appeal.id)


def _answer_appellant(
    session: Session,
    settings: Settings,
    secret_key: str,
    appeal: Appeal,
    case: Case,
    *,
    text: str,
    template: str,
    context: dict[str, Any],
    purpose: str,
    action: str,
    details: dict[str, Any],
    now: datetime,
    answer_on: Case | None,
    answering: Message | None,
) -> int:
    """Mail the appellant at the address on record, threaded where they wrote, and audit it."""
    mail = queue_template_mail(
        session,
        settings,
        secret_key,
        template=template,
        context=context,
        case=answer_on or case,
        to=appeal.appellant_email,
        subject=_subject(answer_on, case, text),
        purpose=purpose,
        **thread_under(answering),
        auto_reply=True,
        now=now,
    ).id
    audit.record(
        session,
        actor="public" if appeal.channel == Channel.WEB else "mailbridge",
        action=action,
        case_id=case.id,
        details={"appeal_id": appeal.id, "channel": appeal.channel, **details},
        now=now,
    )
    return mail


def _subject(answer_on: Case | None, case: Case, text: str) -> str:
    """``[OA-…] text`` with the reference of the case the mail is on, so that a reply threads
    there; an answer on an inquiry also names the case appealed."""
    if answer_on is None or answer_on.id == case.id:
        return f"[{case.reference}] {text}"
    return f"[{answer_on.reference}] {text} of {case.reference}"


def appeal_from_mail(
    session: Session,
    settings: Settings,
    secret_key: str,
    *,
    message: Message,
    now: datetime | None = None,
) -> FilingResult:
    """Treat a new mail in the appeals mailbox that names a case reference as an appeal.

    The mail bridge calls this for each new inbound message it filed from the appeals
    mailbox, after flushing it (so ``message.id`` and ``message.case_id`` are set; the bridge
    has opened an ``inquiry`` for it in team appeals). The same checks as on the web run,
    with the role read from the sender's address: a party gets a confirmation link or the
    reason for a refusal, threaded under their mail, at the address on record; anyone else
    gets nothing more than the bridge's acknowledgement. The inquiry is closed meanwhile (an
    unconfirmed appeal is in no queue); following the link reopens it as the appeal case. Mail
    naming no reference stays an open inquiry for staff to match by hand.

    A From that is a party's address acts as that party only when the bridge verified it
    (``message.sender_verified``: our server's DMARC pass for its domain, or a reply to our
    mail to that address). Otherwise anyone could have written it: a link would reach the
    party for an appeal they never wrote, with reasons they never gave. So nothing is sent,
    and the inquiry stays open, linked to the case and flagged, for staff (UNVERIFIED).

    Idempotent: calling it again for the same message changes nothing. The caller commits,
    then delivers ``outbound_ids``; when the result is CONFIRMATION_SENT or REFUSED, that
    answer can stand in for the bridge's own acknowledgement.
    """
    now = now or utcnow()
    inquiry = session.get(Case, message.case_id) if message.case_id is not None else None
    if not _is_new_appeal_mail(session, message, inquiry):
        return FilingResult(Filed.NOT_NEW)
    if message.auto_submitted or message.bounce or message.quarantined:
        return FilingResult(Filed.IGNORED)
    if (message.auth_results or {}).get("dmarc") == "fail" or not message.sender:
        return FilingResult(Filed.IGNORED)
    reference = named_reference(message.subject, message.body_text)
    if reference is None:
        return FilingResult(Filed.NO_REFERENCE)
    case = find_case(session, reference)
    party = role_of_sender(session, case, message.sender) if case is not None else None
    if case is None or party is None or inquiry is None:
        log.info("appeal mail #%s matched no party of any case", message.id)
        return FilingResult(Filed.NO_MATCH)

    if inquiry.linked_case_id is None:
        inquiry.linked_case_id = case.id
    if message.sender_verified is not True:
        return _unverified(session, message, case, now=now)

    role, address = party
    filed_at = message.created_at or now
    appeal = Appeal(
        case_id=case.id,
        appeal_case_id=inquiry.id,
        role=role.value,
        channel=Channel.MAIL,
        appellant_email=address,
        source_message_id=message.id,
        filed_at=filed_at,
        created_at=now,
    )
    assessment = assess_case(session, case, filed_at=filed_at)
    answer = _ask_for_confirmation if assessment.eligible else _refuse
    result = answer(
        session,
        settings,
        secret_key,
        appeal,
        case,
        assessment,
        now=now,
        answer_on=inquiry,
        answering=message,
    )
    # Answered, and out of the open queue either way: a refused appeal never waits in a
    # reviewer's queue, and an unconfirmed one reaches no reviewer until its link is followed
    # (confirming reopens the inquiry as the appeal, see _open_appeal_case).
    inquiry.status = CaseStatus.CLOSED
    return result


def _unverified(session: Session, message: Message, case: Case, *, now: datetime) -> FilingResult:
    """A party's address in From, and nothing more: staff decide, nothing goes out."""
    note = (
        f"sender not verified: names {case.reference} as an appeal by one of its parties, but "
        "nothing proves that party wrote it; no confirmation link was sent (check with them)"
    )
    message.flag_reason = f"{message.flag_reason}; {note}" if message.flag_reason else note
    audit.record(
        session,
        actor="mailbridge",
        action="appeal.unverified",
        case_id=case.id,
        details={"channel": Channel.MAIL, "message_id": message.id},
        now=now,
    )
    log.info("appeal mail #%s names %s but its sender is not verified", message.id, case.reference)
    return FilingResult(Filed.UNVERIFIED)


def _is_new_appeal_mail(session: Session, message: Message, inquiry: Case | None) -> bool:
    """The first message of an inquiry in the appeals queue, not handled before."""
    if (
        inquiry is None
        or inquiry.kind != CaseKind.INQUIRY
        or inquiry.team != ROUTE_TEAM[Route.COMMITTEE]
    ):
        return False
    if message.direction != Direction.INBOUND:
        return False
    first = session.scalar(select(func.min(Message.id)).where(Message.case_id == inquiry.id))
    if first != message.id:
        return False
    handled = session.scalar(
        select(exists(select(Appeal.id).where(Appeal.source_message_id == message.id)))
    )
    return not handled


# -- confirming -------------------------------------------------------------------------------


def confirm_appeal(
    session: Session,
    settings: Settings,
    secret_key: str,
    token: str,
    *,
    now: datetime | None = None,
) -> Confirmation:
    """Follow a confirmation link: the appeal enters its reviewers' queue, once.

    The rules run again (a decision can change, or another appeal open, in 48 hours), with
    the filing time for the six months. The caller commits, then delivers the mail.
    """
    now = now or utcnow()
    found = pending_appeal_for(session, settings, secret_key, token, now=now)
    if isinstance(found, Confirmed):
        return Confirmation(found)
    appeal = found
    case = session.get_one(Case, appeal.case_id)
    if address_on_record(session, case, AppellantRole(appeal.role), appeal.appellant_email) is None:
        return Confirmation(Confirmed.INVALID)  # no longer a party in that role
    claimed = session.execute(
        update(Appeal)
        .where(Appeal.id == appeal.id, Appeal.state == AppealState.PENDING)
        .values(state=AppealState.OPEN, confirmed_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return Confirmation(Confirmed.USED)
    session.refresh(appeal)

    assessment = assess_case(session, case, filed_at=appeal.filed_at, besides=appeal.id)
    if not assessment.eligible or assessment.route is None:
        appeal.state = AppealState.REFUSED
        appeal.refusal = assessment.refusal.value if assessment.refusal else None
        if appeal.appeal_case_id is not None:  # by mail: the inquiry stays closed
            session.get_one(Case, appeal.appeal_case_id).status = CaseStatus.CLOSED
        audit.record(
            session,
            actor="public",
            action="appeal.refused",
            case_id=case.id,
            details={"appeal_id": appeal.id, "refusal": appeal.refusal, "at": "confirmation"},
            now=now,
        )
        return Confirmation(
            Confirmed.REFUSED, message=assessment.message(legal_address=settings.address_legal)
        )
    appeal.route = assessment.route.value
    appeal.route_reason = assessment.route_reason
    appeal_case = _open_appeal_case(session, settings, appeal, case, assessment.route, now=now)
    mail = queue_template_mail(
        session,
        settings,
        secret_key,
        template="appeal_filed",
        context={"appeal": appeal, "appeal_case": appeal_case, "case": case},
        case=appeal_case,
        to=appeal.appellant_email,
        subject=f"[{appeal_case.reference}] Your appeal of {case.reference} is with its reviewers",
        purpose=MailPurpose.APPEAL_FILED,
        auto_reply=True,
        now=now,
    ).id
    for target, action in ((case.id, "appeal.confirmed"), (appeal_case.id, "appeal.opened")):
        audit.record(
            session,
            actor="public",
            action=action,
            case_id=target,
            details={
                "appeal_id": appeal.id,
                "appeal_reference": appeal_case.reference,
                "appealed_reference": case.reference,
                "route": appeal.route,
            },
            now=now,
        )
    log.info(
        "appeal #%s of %s confirmed: %s (%s)",
        appeal.id,
        case.reference,
        appeal_case.reference,
        appeal.route,
    )
    return Confirmation(
        Confirmed.CONFIRMED,
        reference=appeal_case.reference,
        due_at=appeal_case.due_at,
        outbound_ids=[mail],
    )


def _open_appeal_case(
    session: Session, settings: Settings, appeal: Appeal, case: Case, route: Route, *, now: datetime
) -> Case:
    """The appeal's own case: a new one for a web filing, the inquiry for one by mail."""
    due_at = now + timedelta(days=settings.appeal_clock_days)
    if appeal.appeal_case_id is not None:
        appeal_case = session.get_one(Case, appeal.appeal_case_id)
        appeal_case.kind = CaseKind.APPEAL
        appeal_case.team = ROUTE_TEAM[route].value
        appeal_case.appeal_of_id = case.id
        appeal_case.status = CaseStatus.NEW
        appeal_case.due_at = due_at
        appeal_case.updated_at = now
        return appeal_case

    reporter = find_or_create_reporter(session, appeal.appellant_email)
    appeal_case = Case(
        kind=CaseKind.APPEAL,
        action=None,
        team=ROUTE_TEAM[route].value,
        status=CaseStatus.NEW,
        priority=Priority.NORMAL,
        due_at=due_at,
        requester_id=reporter.id,
        summary=(appeal.reasons or "")[:SUMMARY_MAX_CHARS] or f"Appeal of {case.reference}",
        details=appeal.details,
        appeal_of_id=case.id,
        created_at=now,
        updated_at=now,
    )
    add_case(session, appeal_case, reporter)
    first = Message(
        case_id=appeal_case.id,
        direction=Direction.INBOUND,
        channel=Channel.WEB,
        sender=appeal.appellant_email,
        subject=f"Appeal of {case.reference}",
        body_text=render_appeal_text(appeal, case),
        sent_at=appeal.filed_at,
        created_at=now,
    )
    session.add(first)
    session.flush()
    for item in appeal.attachments or []:
        session.add(
            Attachment(
                message_id=first.id,
                filename=item["filename"],
                content_type=item["content_type"],
                size=item["size"],
                sha256=item["sha256"],
            )
        )
    appeal.appeal_case_id = appeal_case.id
    return appeal_case


def render_appeal_text(appeal: Appeal, case: Case) -> str:
    """The web filing as the first message of the appeal case."""
    action = rule_for(case.action).label if case.action else case.kind.replace("_", " ")
    decided = format_day(case.decided_at.date()) if case.decided_at else "not recorded"
    lines = [
        f"Appeal of {case.reference} ({action}, {case.decision or 'no decision'} on {decided}),",
        f"filed on {format_day(appeal.filed_at.date())} by the {appeal.role}.",
        "",
        "Why the decision was inappropriate:",
        appeal.reasons or "",
        "",
    ]
    if appeal.details:
        lines += ["Further details:", appeal.details, ""]
    return "\n".join(lines).rstrip() + "\n"
