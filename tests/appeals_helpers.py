"""Helpers for the appeal tests: decided cases with their parties, form data, mail links.

Plain functions (no fixtures), so each test module states its own fixtures.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from portal.config import get_settings
from portal.extensions import db
from portal.models import Appeal, Case, OutboundMail, StaffUser
from portal.models.base import utcnow
from portal.policy.appeals import AppellantRole
from portal.services import case_actions
from portal.services.appeal_checks import Confirmed
from portal.services.appeals import AppealFiling, Filed, confirm_appeal, file_appeal
from tests.conftest import csrf_token, work_outbox

# A fixed clock for the rules: decisions on 31 August 2026 (six months later is 28 February).
DECIDED_AT = datetime(2026, 8, 31, 15, 0, tzinfo=UTC)
REQUESTER = "requester@example.org"
SUBJECT = "subject@example.net"
_LINK = re.compile(r"https?://[^\s<>\"]+/appeals/confirm/[A-Za-z0-9_.\-]+")


def decided_case(
    create_case: Callable[..., Case],
    decider: StaffUser,
    *,
    action: str = "global_ban",
    decision: str = "granted",
    decided_at: datetime = DECIDED_AT,
    requester: str = REQUESTER,
    subject: str | None = SUBJECT,
    **decision_fields: Any,
) -> Case:
    """A case with a requester, a subject party, and a decision recorded by ``decider``."""
    case = create_case(action, requester_email=requester, now=decided_at)
    if subject is not None:
        case_actions.add_party(db.session, decider, case, address=subject, role="subject")
    case_actions.record_decision(
        db.session,
        decider,
        case,
        decision=decision,
        details="Reasons of the decision: repeated harassment, see the evidence.",
        now=decided_at,
        **decision_fields,
    )
    db.session.commit()
    return case


def appeal_form(case: Case | None = None, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "case_reference": case.reference if case else "OA-2026-999999",
        "appellant_email": SUBJECT,
        "appellant_role": "subject",
        "reasons": "The evidence was misread: the diffs are not mine.",
        "details": "",
        "website": "",
    }
    data.update(changes)
    return data


def text_of(raw: bytes) -> str:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def link_in(raw: bytes) -> str:
    found = _LINK.search(text_of(raw))
    assert found, "no confirmation link in the mail"
    return found[0]


def outbox(purpose: str | None = None) -> list[OutboundMail]:
    query = select(OutboundMail).order_by(OutboundMail.id)
    if purpose is not None:
        query = query.where(OutboundMail.purpose == purpose)
    db.session.expire_all()
    return list(db.session.scalars(query))


def token_of(mail: OutboundMail) -> str:
    return link_in(mail.raw).rsplit("/", 1)[1]


def strip_csrf(html: str) -> str:
    return re.sub(r'name="csrf_token"[^>]*value="[^"]*"', 'name="csrf_token"', html)


def confirmed_appeal(
    secret_key: str,
    case: Case,
    *,
    role: str = "subject",
    address: str = SUBJECT,
    now: datetime | None = None,
) -> tuple[Appeal, Case]:
    """File an appeal of ``case`` and follow its link, as the appellant would."""
    now = now or utcnow()
    settings = get_settings()
    filed = file_appeal(
        db.session,
        settings,
        secret_key,
        AppealFiling(
            case_reference=case.reference or "",
            appellant_email=address,
            role=AppellantRole(role),
            reasons="The ban rests on a misread diff.",
        ),
        now=now,
    )
    db.session.commit()
    assert filed.result is Filed.CONFIRMATION_SENT, filed
    mail = db.session.get_one(OutboundMail, filed.outbound_ids[0])
    confirmed = confirm_appeal(db.session, settings, secret_key, token_of(mail), now=now)
    db.session.commit()
    assert confirmed.status is Confirmed.CONFIRMED, confirmed
    appeal = db.session.get_one(Appeal, filed.appeal_id)
    return appeal, db.session.get_one(Case, appeal.appeal_case_id)


def file_on_web(client: FlaskClient, data: dict[str, Any], **kwargs: Any) -> TestResponse:
    """Post the appeal form, then let the delivery worker run the filing it stored (the web
    request only stores it: portal.services.appeals.queue_filing)."""
    page = client.get("/appeals/new", **{k: v for k, v in kwargs.items() if k == "base_url"})
    response = client.post("/appeals/new", data={**data, "csrf_token": csrf_token(page)}, **kwargs)
    response.close()
    work_outbox(client.application)
    return response
