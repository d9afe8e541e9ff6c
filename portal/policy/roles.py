"""Who is who: the roles of staff accounts, and the roles people hold on a case.

Both are stored as their values (``staff_users.roles``, ``case_parties.role``,
``appeals.role``) and written out by the export, so a value never changes.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A staff account holds one or more; what each may do is in :mod:`.permissions`."""

    TRUST_SAFETY = "trust_safety"
    LEGAL = "legal"
    APPEALS_REVIEWER = "appeals_reviewer"  # the case review committee
    ADMIN = "admin"


class PartyRole(StrEnum):
    """Why an address may write into a case (mail quoting a reference joins the case only
    when its sender is a party, see ``mailbridge.threads``)."""

    REQUESTER = "requester"  # who filed the request, or opened the case by mail
    SUBJECT = "subject"  # the person the case is about; may appeal its decision
    PARTY = "party"  # anyone else staff let write in


# The roles staff give an address on the case page (the requester is who filed), as offered.
PARTY_ROLES_STAFF_ADD: dict[PartyRole, str] = {
    PartyRole.SUBJECT: "subject",
    PartyRole.PARTY: "other party",
}
