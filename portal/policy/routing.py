"""Where work goes: the teams whose queues hold cases, and the mailboxes that feed them.

A mailbox feeds one team's queue (mail the bridge cannot thread opens an inquiry there); a
staff member works in the queues their roles give them; mail about a case goes out from its
team's role address, so that replies come back to the queue it came from.
"""

from __future__ import annotations

from enum import StrEnum


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
