"""Where work goes: the teams whose queues hold cases, and the mailboxes that feed them.

A mailbox feeds one team's queue (mail the bridge cannot thread opens an inquiry there); a
staff member works in the queues their roles give them; mail about a case goes out from its
team's role address, so that replies come back to the queue it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from portal.policy.roles import Role


class Team(StrEnum):
    TRUST_SAFETY = "trust_safety"
    LEGAL = "legal"
    APPEALS = "appeals"


# The role mailboxes and the queue each feeds (the mail bridge; quarantine release).
MAILBOX_TEAMS: dict[str, Team] = {"ca": Team.TRUST_SAFETY, "appeals": Team.APPEALS}


def team_for_mailbox(mailbox: str | None) -> Team:
    """The queue of mail that came to ``mailbox``; mail from no known mailbox (the web) goes
    to Trust & Safety, who answer ``ca@``."""
    return MAILBOX_TEAMS.get(mailbox or "", Team.TRUST_SAFETY)


# The queues each role works in. Trust & Safety answer appeals too (event bans with no end,
# child protection: see policy.appeals.route_for); admins work in every queue.
ROLE_TEAMS: dict[Role, frozenset[Team]] = {
    Role.TRUST_SAFETY: frozenset({Team.TRUST_SAFETY, Team.APPEALS}),
    Role.LEGAL: frozenset({Team.LEGAL}),
    Role.APPEALS_REVIEWER: frozenset({Team.APPEALS}),
    Role.ADMIN: frozenset(Team),
}


def teams_for_roles(roles: Iterable[str] | None) -> list[Team]:
    """The queues a person with ``roles`` works in, in the inbox's order (Trust & Safety,
    Legal, Appeals). Which cases of them they see is narrowed further (portal.access)."""
    held = [ROLE_TEAMS[Role(role)] for role in roles or () if role in ROLE_TEAMS]
    return [team for team in Team if any(team in teams for teams in held)]


class RoleAddress(StrEnum):
    """The role addresses mail goes out from (``PORTAL_ADDRESS_CA``, ``_LEGAL``, ``_APPEALS``)."""

    CA = "ca"
    LEGAL = "legal"
    APPEALS = "appeals"


# Mail about a case goes out from its team's address, so the answer comes back to its queue.
TEAM_ADDRESSES: dict[Team, RoleAddress] = {
    Team.TRUST_SAFETY: RoleAddress.CA,
    Team.LEGAL: RoleAddress.LEGAL,
    Team.APPEALS: RoleAddress.APPEALS,
}


def address_for_team(team: str) -> RoleAddress:
    """The role address mail about a case of ``team`` is sent from."""
    return TEAM_ADDRESSES[Team(team)]
