"""The checks an appeal passes before anyone reviews it: party, rules, and the link.

Database questions for the pure rules of :mod:`portal.policy.appeals` (is this address the
one on record for that role? is another appeal of the decision open?), and the signed,
single-use confirmation link. Nothing here writes; :mod:`portal.services.appeals` acts on the
answers.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from portal.addresses import canonical_address
from portal.config import Settings
from portal.models import Appeal, Case, CaseParty
from portal.policy.actions import OPEN_STATUSES
from portal.policy.appeals import (
    AppealState,
    AppellantRole,
    Assessment,
    DecisionFacts,
    Outcome,
    assess,
    window_start,
)

# Not a secret: it namespaces the signature, so a confirmation link signed with the app's key
# can never pass for a session cookie or a CSRF token signed with the same key (and back).
# It names where the rules lived when it was chosen; changing it would void every link in flight.
LINK_SALT = "portal.appeals.confirmation"
CONFIRM_PATH = "/appeals/confirm/"


class Confirmed(StrEnum):
    CONFIRMED = "confirmed"
    REFUSED = "refused"  # the rules changed their answer since filing (e.g. an appeal opened)
    EXPIRED = "expired"
    USED = "used"
    INVALID = "invalid"  # forged, altered, for another role, or for no pending appeal


# -- parties and eligibility ------------------------------------------------------------------


def find_case(session: Session, reference: str) -> Case | None:
    return session.scalar(select(Case).where(Case.reference == reference.strip().upper()))


def address_on_record(
    session: Session, case: Case, role: AppellantRole, claimed: str
) -> str | None:
    """The address on record for ``role`` if ``claimed`` is it (canonically), else None.

    The requester is the case's Reporter; the subject is a ``subject`` CaseParty recorded by
    staff. Mail goes to the address on record, never to the one typed: a stranger who types
    a party's address only sends that party a message they can ignore.
    """
    canonical = canonical_address(claimed)
    if role is AppellantRole.REQUESTER:
        requester = case.requester
        if requester is not None and requester.canonical_email == canonical:
            return requester.email
        return None
    return session.scalar(
        select(CaseParty.address).where(
            CaseParty.case_id == case.id,
            CaseParty.role == AppellantRole.SUBJECT.value,
            CaseParty.address == canonical,
        )
    )


def role_of_sender(session: Session, case: Case, sender: str) -> tuple[AppellantRole, str] | None:
    """For mail, which names no role: the role (and address on record) the sender holds."""
    for role in AppellantRole:
        address = address_on_record(session, case, role, sender)
        if address is not None:
            return role, address
    return None


def decision_facts(case: Case) -> DecisionFacts:
    return DecisionFacts(
        kind=case.kind,
        action=case.action,
        team=case.team,
        decision=case.decision,
        notified_at=case.decided_at,
        modified_at=case.modified_at,
        part_of_global_ban=case.part_of_global_ban,
        irrevocable=case.irrevocable,
        has_end_date=case.scope_until is not None,
    )


def open_appeal_exists(session: Session, case: Case, *, besides: int | None = None) -> bool:
    """An appeal of ``case`` is in a queue now (confirmed, and its case not yet decided)."""
    query = (
        select(Appeal.id)
        .join(Case, Case.id == Appeal.appeal_case_id)
        .where(
            Appeal.case_id == case.id,
            Appeal.state == AppealState.OPEN,
            Case.status.in_(OPEN_STATUSES),
        )
    )
    if besides is not None:
        query = query.where(Appeal.id != besides)
    return bool(session.scalar(select(exists(query))))


def already_reviewed(session: Session, case: Case) -> bool:
    """An appeal filed against the decision as it stands now has been ratified or overturned.

    "Reconsider" does not count: it sends the case back, and the new decision that follows
    is a new decision, with its own appeal window.
    """
    if case.decided_at is None:
        return False
    since = window_start(case.decided_at, case.modified_at)
    return bool(
        session.scalar(
            select(
                exists(
                    select(Appeal.id).where(
                        Appeal.case_id == case.id,
                        Appeal.state == AppealState.DECIDED,
                        Appeal.outcome.in_([Outcome.RATIFIED, Outcome.OVERTURNED]),
                        Appeal.filed_at >= since,
                    )
                )
            )
        )
    )


def assess_case(
    session: Session, case: Case, *, filed_at: datetime, besides: int | None = None
) -> Assessment:
    return assess(
        decision_facts(case),
        filed_at=filed_at,
        open_appeal=open_appeal_exists(session, case, besides=besides),
        already_reviewed=already_reviewed(session, case),
    )


# -- the confirmation link ----------------------------------------------------------------------


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=LINK_SALT)


def make_token(secret_key: str, appeal: Appeal) -> str:
    """Signed (so it cannot be forged or altered) and naming the appeal's nonce (so it works
    once) and role (so a link for one role never confirms another)."""
    return str(_serializer(secret_key).dumps({"a": appeal.id, "n": appeal.nonce, "r": appeal.role}))


def confirmation_url(settings: Settings, token: str) -> str:
    # From the configured public address, never from a request's Host header: a forged Host
    # would otherwise send a party a link to someone else's server.
    return f"{settings.public_url}{CONFIRM_PATH}{token}"


def pending_appeal_for(
    session: Session, settings: Settings, secret_key: str, token: str, *, now: datetime
) -> Appeal | Confirmed:
    """The pending appeal a link confirms, or why it does not (nothing is changed)."""
    max_age = int(timedelta(hours=settings.appeal_confirm_hours).total_seconds())
    try:
        payload: Any = _serializer(secret_key).loads(token, max_age=max_age)
    except SignatureExpired:
        return Confirmed.EXPIRED
    except BadSignature:
        return Confirmed.INVALID
    if not isinstance(payload, dict) or not isinstance(payload.get("a"), int):
        return Confirmed.INVALID
    appeal = session.get(Appeal, payload["a"])
    if appeal is None or not appeal.nonce:
        return Confirmed.INVALID
    if not hmac.compare_digest(appeal.nonce.encode(), str(payload.get("n", "")).encode()):
        return Confirmed.INVALID
    if payload.get("r") != appeal.role:
        return Confirmed.INVALID
    if appeal.state in (AppealState.OPEN, AppealState.DECIDED) or appeal.confirmed_at:
        return Confirmed.USED
    if appeal.state != AppealState.PENDING:
        return Confirmed.INVALID
    if appeal.expires_at is None or now > appeal.expires_at:
        return Confirmed.EXPIRED
    return appeal
