"""Issue 10, section 2 on the public forms: internationalised addresses (RFC 6530-6532).

Seen: ``josé@example.com``, ``用户@例子.广告``, ``jose@exämple.com`` and ``x@xn--bcher-kva.example``
made the request form answer 500 (for an IDN domain the case was saved, yet the person was told
it failed; one was a child-protection report). Every one of them, and Arabic and Hebrew
addresses wrapped in bidi controls, must now open a case, tell the person so, and queue an
acknowledgement that can be sent. Look-alike spellings of a locked-out reporter's address are
refused like the address itself; other look-alike domains are flagged for staff.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.addresses import canonical_address, mail_address, needs_smtputf8
from portal.extensions import db
from portal.models import Case, Lockout, Message, OutboundMail, Reporter, StaffUser
from portal.models.base import utcnow
from portal.policy.mail import MailPurpose
from portal.services.cases import find_or_create_reporter
from tests.appeals_helpers import appeal_form, decided_case, file_on_web, outbox
from tests.conftest import post_form, work_outbox
from tests.public_data import valid_request
from tests.servers.smtp import SmtpServer

# (as typed, as stored for replies)
ADDRESSES = [
    ("josé@example.com", "josé@example.com"),
    ("用户@例子.广告", "用户@例子.广告"),
    ("jose@exämple.com", "jose@exämple.com"),
    ("x@xn--bcher-kva.example", "x@bücher.example"),
    ("\u202bمريم@مثال.إختبار\u202c", "مريم@مثال.إختبار"),
    ("\u200fשרה\u200b@example.co.il", "שרה@example.co.il"),
]
ASCII_DOMAIN_AFTER_ALL = [typed for typed, stored in ADDRESSES if not needs_smtputf8(stored)]


@pytest.fixture
def app_config(smtp: SmtpServer) -> dict[str, Any]:
    return {
        "MAIL_SERVER": smtp.host,
        "MAIL_PORT": smtp.port,
        "APPEAL_RATE_LIMIT": "1000 per hour",
        "APPEAL_ADDRESS_RATE_LIMIT": "1000 per day",
        "APPEAL_PAGE_RATE_LIMIT": "1000 per hour",
    }


def _acks() -> list[OutboundMail]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(OutboundMail).where(OutboundMail.purpose == MailPurpose.ACKNOWLEDGEMENT)
        )
    )


@pytest.mark.parametrize("action", ["global_ban", "child_protection"])
@pytest.mark.parametrize(("typed", "stored"), ADDRESSES)
def test_request_form_accepts_internationalised_addresses(
    client: FlaskClient, smtp: SmtpServer, typed: str, stored: str, action: str
) -> None:
    data = valid_request(action=action, requester_email=typed, requester_name="مريم כהן")
    if action == "child_protection":
        data["prior_attempt_urls"] = ""
    response = post_form(client, "/requests/new", data)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]

    case = db.session.scalars(select(Case)).one()
    told = client.get(response.headers["Location"])
    assert told.status_code == 200
    assert case.reference in told.get_data(as_text=True)

    reporter = db.session.get_one(Reporter, case.requester_id)
    assert reporter.email == stored  # replies go to the address as written
    assert reporter.canonical_email == canonical_address(typed)  # one form for comparing

    (ack,) = _acks()
    assert ack.recipients == [mail_address(stored)]
    # In ASCII where the domain alone is international; in UTF-8 (RFC 6532) otherwise.
    assert f"\r\nTo: {mail_address(stored)}\r\n".encode() in ack.raw


@pytest.mark.parametrize("typed", ASCII_DOMAIN_AFTER_ALL)
def test_an_idn_domain_acknowledgement_is_delivered_in_ascii(
    client: FlaskClient, smtp: SmtpServer, typed: str
) -> None:
    """An internationalised domain alone needs no SMTPUTF8: the envelope and the To header
    carry its A-labels, which every server takes."""
    response = post_form(client, "/requests/new", valid_request(requester_email=typed))
    assert response.status_code == 303
    work_outbox(client.application)
    (received,) = smtp.wait_for(1)
    stored = dict(ADDRESSES)[typed]
    assert received.rcpt_tos == [mail_address(stored)]
    assert received.rcpt_tos[0].isascii()
    (ack,) = _acks()
    assert ack.state == "sent"


@pytest.fixture
def decider(create_staff: Callable[..., StaffUser]) -> StaffUser:
    return create_staff("trust_safety")


@pytest.mark.parametrize(("typed", "stored"), ADDRESSES)
def test_appeal_form_accepts_internationalised_addresses(
    client: FlaskClient,
    create_case: Callable[..., Case],
    decider: StaffUser,
    typed: str,
    stored: str,
) -> None:
    case = decided_case(
        create_case, decider, requester=stored, decided_at=utcnow() - timedelta(days=10)
    )
    response = file_on_web(
        client, appeal_form(case, appellant_email=typed.upper(), appellant_role="requester")
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/appeals/sent")
    (confirmation,) = outbox(MailPurpose.APPEAL_CONFIRMATION)
    assert confirmation.recipients == [mail_address(stored)]


# -- look-alikes on the web forms -----------------------------------------------------------


@pytest.fixture
def locked_out(client: FlaskClient) -> Lockout:
    reporter = find_or_create_reporter(db.session, "jane.doe@gmail.com")
    now = utcnow()
    lockout = Lockout(
        reporter_id=reporter.id,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=30),
        proposed_days=30,
    )
    db.session.add(lockout)
    db.session.commit()
    return lockout


@pytest.mark.parametrize(
    "typed",
    [
        "jane.doe@gma\u0131l.com",
        "JANE.DOE@GMA\u0130L.COM",
        "janedoe@xn--gmil-6na.com",
        "jane\u200b.doe@gmail.com",
    ],
)
def test_lookalikes_of_a_locked_out_address_are_refused_like_it(
    client: FlaskClient, locked_out: Lockout, typed: str
) -> None:
    response = post_form(client, "/requests/new", valid_request(requester_email=typed))
    assert response.status_code == 403
    assert locked_out.ends_at.strftime("%-d %B %Y") in response.get_data(as_text=True)
    assert db.session.scalars(select(Case)).first() is None
    appeal = file_on_web(client, appeal_form(appellant_email=typed, appellant_role="requester"))
    assert appeal.status_code == 403


def test_a_lookalike_provider_domain_is_flagged_for_staff(client: FlaskClient) -> None:
    response = post_form(
        client, "/requests/new", valid_request(requester_email="bob@gma\u0131l.com")
    )
    assert response.status_code == 303
    first = db.session.scalars(select(Message).order_by(Message.id)).first()
    assert first is not None
    assert "looks like gmail.com" in (first.flag_reason or "")
