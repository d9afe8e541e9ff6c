"""Who may do what, and which queues each role works in: the rules of portal.policy.permissions
and portal.policy.routing, tested directly, one role at a time (no app, no database)."""

from __future__ import annotations

import pytest

from portal.policy.appeals import AppealState, Route
from portal.policy.permissions import (
    DECIDER_ROLE,
    may_handle_abuse,
    may_manage_canned_responses,
    reads_shared_files,
    referable,
    sees_child_protection,
    sees_every_confidential_case,
    sees_every_queue,
    why_cannot_decide_appeal,
    why_cannot_refer,
    why_cannot_share,
)
from portal.policy.roles import Role
from portal.policy.routing import (
    RoleAddress,
    Team,
    address_for_team,
    team_for_mailbox,
    teams_for_roles,
)

ROLES = list(Role)


@pytest.mark.parametrize(
    ("roles", "teams"),
    [
        ([Role.TRUST_SAFETY], [Team.TRUST_SAFETY, Team.APPEALS]),
        ([Role.LEGAL], [Team.LEGAL]),
        ([Role.APPEALS_REVIEWER], [Team.APPEALS]),
        ([Role.ADMIN], [Team.TRUST_SAFETY, Team.LEGAL, Team.APPEALS]),
        ([Role.APPEALS_REVIEWER, Role.LEGAL], [Team.LEGAL, Team.APPEALS]),
        ([Role.TRUST_SAFETY, Role.APPEALS_REVIEWER], [Team.TRUST_SAFETY, Team.APPEALS]),
        ([], []),
        (None, []),
        (["no_such_role"], []),
    ],
)
def test_the_queues_each_role_works_in(roles: list[str] | None, teams: list[Team]) -> None:
    assert teams_for_roles(roles) == teams


def test_roles_are_stored_as_their_values() -> None:
    assert [role.value for role in Role] == ["trust_safety", "legal", "appeals_reviewer", "admin"]
    assert teams_for_roles(["legal"]) == teams_for_roles([Role.LEGAL])


@pytest.mark.parametrize(
    ("mailbox", "team"),
    [
        ("ca", Team.TRUST_SAFETY),
        ("appeals", Team.APPEALS),
        (None, Team.TRUST_SAFETY),
        ("web", Team.TRUST_SAFETY),
    ],
)
def test_mail_goes_to_its_mailboxs_queue(mailbox: str | None, team: Team) -> None:
    assert team_for_mailbox(mailbox) is team


def test_mail_about_a_case_goes_out_from_its_teams_address() -> None:
    assert address_for_team("trust_safety") is RoleAddress.CA
    assert address_for_team(Team.LEGAL) is RoleAddress.LEGAL
    assert address_for_team("appeals") is RoleAddress.APPEALS
    with pytest.raises(ValueError, match="no_such_team"):
        address_for_team("no_such_team")


@pytest.mark.parametrize("role", ROLES)
def test_abuse_and_canned_responses_one_role_at_a_time(role: Role) -> None:
    assert may_handle_abuse([role]) is (role in (Role.TRUST_SAFETY, Role.ADMIN))
    assert may_manage_canned_responses([role]) is (role is Role.ADMIN)


@pytest.mark.parametrize("role", ROLES)
def test_what_each_role_sees(role: Role) -> None:
    assert sees_every_queue([role]) is (role is Role.ADMIN)
    # Admins do not see child protection: only Trust & Safety do.
    assert sees_child_protection([role]) is (role is Role.TRUST_SAFETY)
    assert sees_every_confidential_case([role]) is (role is Role.ADMIN)
    assert reads_shared_files([role]) is (role is Role.APPEALS_REVIEWER)


def test_no_roles_may_do_nothing() -> None:
    for roles in (None, [], ["no_such_role"]):
        assert not may_handle_abuse(roles)
        assert not may_manage_canned_responses(roles)
        assert not sees_every_queue(roles)
        assert not sees_child_protection(roles)


# -- deciding an appeal --------------------------------------------------------------------

ME, COLLEAGUE = 7, 8


def decide(
    roles: list[str],
    *,
    state: str | None = AppealState.OPEN,
    route: str | None = Route.COMMITTEE,
    decided_by_id: int | None = COLLEAGUE,
) -> str | None:
    return why_cannot_decide_appeal(
        staff_id=ME, roles=roles, state=state, route=route, decided_by_id=decided_by_id
    )


@pytest.mark.parametrize("route", list(Route))
@pytest.mark.parametrize("role", ROLES)
def test_only_the_routes_team_decides_an_appeal(route: Route, role: Role) -> None:
    refusal = decide([role], route=route)
    if role is DECIDER_ROLE[route]:
        assert refusal is None
    else:
        assert refusal is not None
        assert "so only they can decide it" in refusal


def test_an_appeal_with_no_route_recorded_is_the_committees() -> None:
    assert decide([Role.APPEALS_REVIEWER], route=None) is None
    assert decide([Role.TRUST_SAFETY], route=None) == (
        "This appeal is with the case review committee, so only they can decide it."
    )


def test_the_original_decider_never_decides_its_appeal() -> None:
    assert decide([Role.APPEALS_REVIEWER], decided_by_id=ME) == (
        "You made the decision under appeal, so a colleague must decide its appeal."
    )
    # An unknown decider (an account deleted since) bars nobody.
    assert decide([Role.APPEALS_REVIEWER], decided_by_id=None) is None


@pytest.mark.parametrize(
    ("state", "words"),
    [
        (None, "No confirmed appeal is recorded"),
        (AppealState.PENDING, "has not confirmed this appeal"),
        (AppealState.REFUSED, "has not confirmed this appeal"),
        (AppealState.DECIDED, "decided already"),
    ],
)
def test_only_an_open_appeal_is_decided(state: str | None, words: str) -> None:
    refusal = decide([Role.APPEALS_REVIEWER], state=state)
    assert refusal is not None
    assert words in refusal


def test_the_state_is_checked_before_the_decider() -> None:
    """An appeal decided already says so, even to the person who made the decision."""
    refusal = decide([Role.LEGAL], state=AppealState.DECIDED, decided_by_id=ME)
    assert refusal == "This appeal has been decided already; its outcome is final."


# -- referring to the committee, sharing with it ---------------------------------------------


@pytest.mark.parametrize(
    ("state", "route", "expected"),
    [
        (AppealState.OPEN, Route.LEGAL, True),
        (AppealState.OPEN, Route.TRUST_SAFETY, True),
        (AppealState.OPEN, Route.COMMITTEE, False),
        (AppealState.OPEN, None, False),
        (AppealState.PENDING, Route.LEGAL, False),
        (AppealState.DECIDED, Route.LEGAL, False),
        (None, Route.LEGAL, False),
    ],
)
def test_which_appeals_can_be_referred(
    state: str | None, route: str | None, expected: bool
) -> None:
    assert referable(state, route) is expected


@pytest.mark.parametrize("role", ROLES)
def test_only_the_routes_team_refers(role: Role) -> None:
    for route in (Route.LEGAL, Route.TRUST_SAFETY):
        refusal = why_cannot_refer(roles=[role], state=AppealState.OPEN, route=route)
        assert (refusal is None) is (role is DECIDER_ROLE[route])
    assert why_cannot_refer(roles=[role], state=AppealState.OPEN, route=Route.COMMITTEE) == (
        "This appeal is with the case review committee already."
    )
    assert why_cannot_refer(roles=[role], state=None, route=Route.LEGAL) == (
        "Only an open, confirmed appeal can be referred to the committee."
    )


@pytest.mark.parametrize("role", ROLES)
def test_who_shares_a_case_file_with_the_committee(role: Role) -> None:
    may = role in (Role.TRUST_SAFETY, Role.ADMIN)
    assert (why_cannot_share(roles=[role], team=Team.TRUST_SAFETY) is None) is may
    assert (why_cannot_share(roles=[role], team=Team.LEGAL) is None) is may
    # An appeal is the committee's own: nothing to share, whoever asks.
    assert why_cannot_share(roles=[role], team=Team.APPEALS) is not None
