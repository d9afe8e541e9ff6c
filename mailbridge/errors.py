"""The bridge's failures, kept apart from bad mail because they are handled apart.

* Bad mail is the sender's fault (malformed, too large, not what RFC 5322 promised). It raises
  nothing: ``mailbridge.parse`` writes what went wrong into ``ParsedMail.problems``, and the
  message is stored raw and flagged for staff; the batch goes on.
* :class:`BridgeFault`: ours or our infrastructure's. A mailbox that cannot be reached, a
  refused login, a full disk. The batch is not committed (so its cursor does not move) and the
  mailbox is retried later; nothing is lost because the mail stays on the server.
"""

from __future__ import annotations


class BridgeFault(Exception):
    """Something on our side failed; the work is retried, never skipped."""


class MailboxConfigError(BridgeFault):
    """A mailbox URL we cannot use. The message names the mailbox, never the password."""


class MailboxUnavailable(BridgeFault):
    """A mailbox that could not be read at all: connection, login or folder refused."""


class UidValidityChanged(BridgeFault):
    """The server renumbered the folder (RFC 3501 2.3.1.1): our UIDs for it mean nothing now."""

    def __init__(self, mailbox: str, old: int, new: int) -> None:
        super().__init__(f"{mailbox}: UIDVALIDITY changed from {old} to {new}")
        self.mailbox = mailbox
        self.old = old
        self.new = new
