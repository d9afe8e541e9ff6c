"""Mail we send on our own: what each mail is for, and when an acknowledgement goes out.

An acknowledgement tells a person that a human will read what they sent, and gives them the
reference to quote. It goes to whoever opened a case (on the web form, or by mail that opened
a new case), from the case's team address, marked ``Auto-Submitted: auto-replied`` (RFC 3834),
and never:

- to mail written by a machine (auto-replies, list traffic) or to a bounce: that starts loops;
- to mail whose From failed DMARC at our server: the From is likely forged, and an answer
  would land on someone who never wrote (backscatter);
- to mail older than :data:`ACK_MAX_AGE` when we first see it (a first sync, a restored
  mailbox): it is history, and its sender is not waiting;
- to our own role addresses, to a locked-out reporter (their mail is quarantined), or on the
  strength of a party's address alone (``mailbridge.threads``: joining is not acting);
- more than :data:`ACKS_PER_ADDRESS_PER_DAY` times to one person in :data:`ACK_WINDOW`, so a
  loop with another robot, or a burst of filings, cannot make the portal a mail cannon.

How mail is threaded onto cases is the mail bridge's (``mailbridge.threads``), where the rules
sit beside the lookups they need.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum


class MailPurpose(StrEnum):
    """Why a mail was queued (``outbound_mail.purpose``; also the outbox file names)."""

    ACKNOWLEDGEMENT = "acknowledgement"
    REPLY = "reply"
    WARNING = "warning"  # an abuse warning
    APPEAL_CONFIRMATION = "appeal_confirmation"
    APPEAL_REFUSAL = "appeal_refusal"
    APPEAL_FILED = "appeal_filed"
    APPEAL_OUTCOME = "appeal_outcome"


# Defaults: PORTAL_ACKS_PER_ADDRESS_PER_DAY may change the limit.
ACKS_PER_ADDRESS_PER_DAY = 5
ACK_WINDOW = timedelta(days=1)
ACK_MAX_AGE = timedelta(days=3)


def why_no_acknowledgement(
    *, auto_submitted: bool, bounce: bool, dmarc: str | None, age: timedelta
) -> str | None:
    """Why mail that opened a case gets no acknowledgement, or None when it may get one.

    ``dmarc`` is our server's DMARC verdict for the From (``fail`` is the one that counts);
    ``age`` is how long ago the mail arrived in the mailbox, when we first see it.
    """
    if auto_submitted or bounce:
        return "written by a machine, or a bounce: an answer could start a mail loop"
    if dmarc == "fail":
        return "failed DMARC: the From may be forged, and an answer would be backscatter"
    if age > ACK_MAX_AGE:
        return "history: its sender is not waiting for an acknowledgement"
    return None


def within_daily_limit(sent_in_window: int, limit: int = ACKS_PER_ADDRESS_PER_DAY) -> bool:
    """Whether one more acknowledgement may go to a person who had ``sent_in_window`` in the
    last :data:`ACK_WINDOW`."""
    return sent_in_window < limit
