"""Which mailboxes to read and how: IMAP URLs and the bridge's tunables, read once.

``PORTAL_IMAP_CA_URL=imap://ca%40example.org:s3cret@imap.example.org:143/INBOX`` names the
server, the account and the folder; ``imaps://`` means TLS from the first byte (port 993).
User, password and folder are percent-encoded in the URL and decoded here. The password never
appears in a repr, a log line or an error message.

The bridge's own knobs (size limit, batch size, poll and IDLE intervals) are read from
``app.config`` with defaults, so ``PORTAL_MAIL_MAX_BYTES=10485760`` works like every other
``PORTAL_`` setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from mailbridge.authresults import valid_authserv_id
from mailbridge.errors import MailboxConfigError
from portal.config import Settings
from portal.policy.routing import MAILBOX_TEAMS, Team

# How long a bridge's hold on a mailbox lasts without renewal (mailbridge.lease).
LEASE_SECONDS_DEFAULT = 900.0

# Mailbox name -> the team whose queue it feeds.
DEFAULT_PORTS = {"imap": 143, "imaps": 993}

MAX_BYTES_DEFAULT = 25 * 1024 * 1024
# RFC 2177 lets servers drop an IDLE after 30 minutes, and many NAT boxes forget a quiet TCP
# connection far sooner; re-issuing every 8 minutes stays under both.
IDLE_MAX_SECONDS = 8 * 60


@dataclass(frozen=True)
class MailboxConfig:
    """One role mailbox: its name (``ca``), the team it feeds, and where it lives."""

    name: str
    team: Team
    host: str
    port: int
    ssl: bool
    user: str
    password: str = field(repr=False)
    folder: str = "INBOX"

    @property
    def where(self) -> str:
        """For messages to operators: server and folder, without credentials."""
        scheme = "imaps" if self.ssl else "imap"
        return f"{scheme}://{self.host}:{self.port}/{self.folder}"


def parse_imap_url(name: str, url: str) -> MailboxConfig:
    """A :class:`MailboxConfig` from ``imap[s]://USER:PASSWORD@HOST[:PORT][/FOLDER]``.

    Errors name the mailbox and the part that is wrong; they never echo the URL, because the
    URL holds the password.
    """
    if name not in MAILBOX_TEAMS:
        raise MailboxConfigError(f"{name}: unknown mailbox (expected one of {list(MAILBOX_TEAMS)})")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise MailboxConfigError(f"{name}: the IMAP URL is malformed (bad port?)") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise MailboxConfigError(
            f"{name}: the IMAP URL must start with imap:// or imaps:// "
            "(imap://USER:PASSWORD@HOST:PORT/FOLDER)"
        )
    if not parts.hostname:
        raise MailboxConfigError(f"{name}: the IMAP URL has no host")
    if not parts.username or parts.password is None:
        raise MailboxConfigError(f"{name}: the IMAP URL needs USER:PASSWORD@ before the host")
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return MailboxConfig(
        name=name,
        team=MAILBOX_TEAMS[name],
        host=parts.hostname,
        port=port or DEFAULT_PORTS[parts.scheme],
        ssl=parts.scheme == "imaps",
        user=unquote(parts.username),
        password=unquote(parts.password),
        folder=folder,
    )


def configured_mailboxes(settings: Settings, only: str | None = None) -> list[MailboxConfig]:
    """The mailboxes with a URL set (``only`` narrows to one), parsed; errors name the mailbox."""
    urls = {"ca": settings.imap_ca_url, "appeals": settings.imap_appeals_url}
    if only is not None:
        if not urls.get(only):
            env = f"PORTAL_IMAP_{only.upper()}_URL"
            raise MailboxConfigError(f"{only}: no IMAP URL configured (set {env})")
        urls = {only: urls[only]}
    return [parse_imap_url(name, url) for name, url in urls.items() if url]


@dataclass(frozen=True)
class BridgeSettings:
    """The bridge's tunables, from ``app.config`` (``PORTAL_MAIL_*``) with safe defaults."""

    max_bytes: int = MAX_BYTES_DEFAULT
    batch_size: int = 200
    batch_bytes: int = 32 * 1024 * 1024
    search_window: int = 5_000
    poll_seconds: float = 60.0
    idle_seconds: float = IDLE_MAX_SECONDS
    imap_timeout: float = 60.0
    reconnect_max_seconds: float = 60.0
    outbound_every_seconds: float = 15.0
    # Our receiving server's authserv-id: only its Authentication-Results are trusted.
    authserv_id: str | None = None
    workers: int | None = None  # processes preparing mail; None: one per core (at least 2)
    lease_seconds: float = LEASE_SECONDS_DEFAULT

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BridgeSettings:
        def number(key: str, default: float) -> float:
            value = config.get(key)
            return default if value in (None, "") else float(value)

        poll = max(number("MAIL_POLL_SECONDS", cls.poll_seconds), 1.0)
        return cls(
            max_bytes=int(number("MAIL_MAX_BYTES", cls.max_bytes)),
            batch_size=max(int(number("MAIL_FETCH_BATCH", cls.batch_size)), 1),
            poll_seconds=poll,
            idle_seconds=min(number("MAIL_IDLE_SECONDS", IDLE_MAX_SECONDS), IDLE_MAX_SECONDS),
            imap_timeout=number("MAIL_IMAP_TIMEOUT", cls.imap_timeout),
            reconnect_max_seconds=number("MAIL_RECONNECT_MAX_SECONDS", cls.reconnect_max_seconds),
            authserv_id=config.get("MAIL_AUTHSERV_ID") or None,
            lease_seconds=max(
                number("MAIL_LEASE_SECONDS", cls.lease_seconds), IDLE_MAX_SECONDS + 60
            ),
            workers=(
                None
                if config.get("MAIL_WORKERS") in (None, "")
                else max(int(number("MAIL_WORKERS", 0)), 0)
            ),
        )


def require_authserv_id(bridge: BridgeSettings) -> str:
    """Our receiving server's authserv-id, which reading a mailbox cannot do without.

    Without it no ``Authentication-Results`` can be told from one the sender wrote, so no
    From could ever be verified by DMARC (and before, the top-most header was believed,
    whoever wrote it). The value is the first word of the header our server adds:
    ``Authentication-Results: mx.example.org; spf=pass …`` -> ``mx.example.org``.
    """
    value = (bridge.authserv_id or "").strip()
    if not value:
        raise MailboxConfigError(
            "PORTAL_MAIL_AUTHSERV_ID is not set: give the authserv-id of our receiving mail "
            "server (the first word of the Authentication-Results it adds, e.g. mx.example.org)"
        )
    if not valid_authserv_id(value):
        raise MailboxConfigError(
            f"PORTAL_MAIL_AUTHSERV_ID {value[:100]!r} is not an authserv-id "
            "(one word, like mx.example.org)"
        )
    return value
