"""Who may do what: the rules behind every role check, as functions of plain values.

Views, forms, templates and services ask here and enforce the answer (a 403, a hidden form,
an error staff can read); ``portal.access`` builds its SQL from these answers and from
:func:`portal.policy.routing.teams_for_roles`. Each ``why_cannot_*`` returns the one sentence
that explains a refusal, or None when the person may.
"""

from __future__ import annotations

from collections.abc import Iterable

from portal.policy.appeals import ROUTE_LABELS, AppealState, Route, route_of
from portal.policy.roles import Role
from portal.policy.routing import Team

Roles = Iterable[str] | None

#: Mark abuse, warn, lock out and lift, read the quarantine, open a reporter's record.
ABUSE_ROLES: tuple[Role, ...] = (Role.TRUST_SAFETY, Role.ADMIN)
#: Keep the canned responses every team starts replies from.
CANNED_RESPONSE_ROLES: tuple[Role, ...] = (Role.ADMIN,)
#: Decide what the case review committee may read of a case under appeal.
SHARING_ROLES: tuple[Role, ...] = (Role.TRUST_SAFETY, Role.ADMIN)
#: Who decides (and, off the committee's route, refers) an appeal on each route.
DECIDER_ROLE: dict[Route, Role] = {
    Route.COMMITTEE: Role.APPEALS_REVIEWER,
    Route.TRUST_SAFETY: Role.TRUST_SAFETY,
    Route.LEGAL: Role.LEGAL,
}


def holds(roles: Roles, allowed: Iterable[str]) -> bool:
    """Whether ``roles`` include any of ``allowed``."""
    return bool(set(roles or ()) & set(allowed))


def may_handle_abuse(roles: Roles) -> bool:
    return holds(roles, ABUSE_ROLES)


def may_manage_canned_responses(roles: Roles) -> bool:
    return holds(roles, CANNED_RESPONSE_ROLES)


# -- what a role sees (portal.access turns these into its WHERE clause) ---------------------


def sees_every_queue(roles: Roles) -> bool:
    """Admins see every case (still subject to the two rules below)."""
    return holds(roles, (Role.ADMIN,))


def sees_child_protection(roles: Roles) -> bool:
    """Child protection cases are seen by Trust & Safety only, admins included."""
    return holds(roles, (Role.TRUST_SAFETY,))


def sees_every_confidential_case(roles: Roles) -> bool:
    """A confidential case is seen by its assignee, and by admins."""
    return holds(roles, (Role.ADMIN,))


def reads_shared_files(roles: Roles) -> bool:
    """Appeal reviewers read the whole file of a case under appeal once Trust & Safety share
    it with them; otherwise only the decision, on the appeal's review page."""
    return holds(roles, (Role.APPEALS_REVIEWER,))


# -- appeals ------------------------------------------------------------------------------------


def why_cannot_decide_appeal(
    *,
    staff_id: int,
    roles: Roles,
    state: str | None,
    route: str | None,
    decided_by_id: int | None,
) -> str | None:
    """Whether a staff member may record an appeal's outcome. ``state`` is None when no
    confirmed appeal is recorded; ``decided_by_id`` is who made the decision under appeal,
    who never decides its appeal."""
    if state is None:
        return (
            "No confirmed appeal is recorded for this case, so there is nothing to decide here: "
            "an appeal is filed on the appeal form or by mail to the appeals address."
        )
    if state == AppealState.DECIDED:
        return "This appeal has been decided already; its outcome is final."
    if state != AppealState.OPEN:
        return "The appellant has not confirmed this appeal, so it is not open for review."
    if decided_by_id is not None and decided_by_id == staff_id:
        return "You made the decision under appeal, so a colleague must decide its appeal."
    on_route = route_of(route)
    if not holds(roles, (DECIDER_ROLE[on_route],)):
        return f"This appeal is with {ROUTE_LABELS[on_route]}, so only they can decide it."
    return None


def referable(state: str | None, route: str | None) -> bool:
    """An open appeal on another route than the committee's can be passed to the committee
    (Legal found it eligible, or Trust & Safety pass it on); the review page offers it then."""
    return state == AppealState.OPEN and route_of(route) is not Route.COMMITTEE


def why_cannot_refer(*, roles: Roles, state: str | None, route: str | None) -> str | None:
    """Whether a staff member may refer an appeal to the committee: only its route's team."""
    if state != AppealState.OPEN:
        return "Only an open, confirmed appeal can be referred to the committee."
    on_route = route_of(route)
    if on_route is Route.COMMITTEE:
        return "This appeal is with the case review committee already."
    if not holds(roles, (DECIDER_ROLE[on_route],)):
        return f"This appeal is with {ROUTE_LABELS[on_route]}, so only they can refer it."
    return None


def why_cannot_share(*, roles: Roles, team: str) -> str | None:
    """Whether a staff member may open a case's whole file to the review committee (the case
    page offers the form exactly when they may)."""
    if not holds(roles, SHARING_ROLES):
        return "Only Trust & Safety decide what the review committee may read."
    if team == Team.APPEALS:
        return "This is an appeal: its reviewers see it already."
    return None
