"""The domain's words as stored in the database and written by ``cases export``: each enum's
values are a contract, and never change (renaming a member is fine, its value is not)."""

from __future__ import annotations

from enum import StrEnum

import pytest

from portal.models.message import Channel, Direction
from portal.policy.abuse import AbuseCategory, Intent, Seriousness
from portal.policy.actions import CaseKind, CaseStatus, Decision, Priority
from portal.policy.appeals import AppealState, AppellantRole, Outcome, Route
from portal.policy.mail import MailPurpose
from portal.policy.roles import PartyRole, Role
from portal.policy.routing import Team

VALUES: list[tuple[type[StrEnum], list[str]]] = [
    (Direction, ["inbound", "outbound", "note"]),
    (Channel, ["web", "mail"]),
    (Role, ["trust_safety", "legal", "appeals_reviewer", "admin"]),
    (PartyRole, ["requester", "subject", "party"]),
    (AppellantRole, ["requester", "subject"]),
    (AppealState, ["pending", "refused", "open", "decided"]),
    (Outcome, ["ratified", "overturned", "reconsider"]),
    (Route, ["committee", "trust_safety", "legal"]),
    (Decision, ["granted", "declined"]),
    (Team, ["trust_safety", "legal", "appeals"]),
    (CaseKind, ["request", "appeal", "dmca_notice", "dmca_counter_notice", "inquiry"]),
    (CaseStatus, ["new", "open", "waiting", "in_review", "decided", "closed"]),
    (Priority, ["urgent", "normal"]),
    (
        MailPurpose,
        [
            "acknowledgement",
            "reply",
            "warning",
            "appeal_confirmation",
            "appeal_refusal",
            "appeal_filed",
            "appeal_outcome",
        ],
    ),
    (
        AbuseCategory,
        [
            "terms_of_use",
            "friendly_space",
            "threat_or_harassment_of_staff",
            "preferential_treatment",
        ],
    ),
    (Seriousness, ["minor", "serious", "severe"]),
    (Intent, ["good_faith", "unclear", "bad_faith"]),
]


@pytest.mark.parametrize(("enum", "values"), VALUES, ids=[e.__name__ for e, _ in VALUES])
def test_values_never_change(enum: type[StrEnum], values: list[str]) -> None:
    assert [member.value for member in enum] == values


@pytest.mark.parametrize(("enum", "values"), VALUES, ids=[e.__name__ for e, _ in VALUES])
def test_a_member_reads_and_compares_as_its_value(enum: type[StrEnum], values: list[str]) -> None:
    """What a row gets when code writes a member, and what f-strings, JSON and templates show."""
    for member, value in zip(enum, values, strict=True):
        assert member == value
        assert f"{member}" == str(member) == value
        assert enum(value) is member
