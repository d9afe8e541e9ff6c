"""The rules of staff sign-in and staff sessions, as pure functions (no Flask, no database).

Throttling is per *(account, address)*: whoever guesses at an account from one address slows
only themselves, never the staff member signing in from somewhere else (an account-wide lock
is a lock anyone can trigger). The first ``FREE_FAILURES`` mistakes cost nothing; after that
each further try waits twice as long as the one before, up to ``MAX_DELAY``::

    failures so far   0  1  2  3   4    5    6    7    8     9     10    11 ...
    wait before next  0  0  0  5s  10s  20s  40s  80s  160s  320s  640s  15 min (cap)

One address also has a generous cap over all accounts together (``MAX_ATTEMPTS_PER_ADDRESS``
per ``ADDRESS_WINDOW``), so that it cannot spray guesses over many accounts. An IPv6 client
usually owns a whole /64, so its addresses count as one.

A session ends when its account's session version moved on (logout, disabling, a password
change or a 2FA reset end every session of the account), after ``idle`` without a request,
or ``lifetime`` after sign-in, whatever happened in between.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from enum import Enum

from portal.addresses import EmailNotValidError, normalize_address

FREE_FAILURES = 3
FIRST_DELAY = timedelta(seconds=5)
MAX_DELAY = timedelta(minutes=15)
# A pair (account, address) that stayed quiet this long starts again from zero.
FORGET_AFTER = timedelta(hours=24)
# One pair makes at most about 13 attempts an hour under the delays above, so 30 leaves room
# for a whole office behind one address mistyping, and stops a spray after ten accounts.
MAX_ATTEMPTS_PER_ADDRESS = 30
ADDRESS_WINDOW = timedelta(hours=1)


def delay_after(failures: int) -> timedelta:
    """How long the next attempt of a pair waits after ``failures`` consecutive failures."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    doublings = failures - FREE_FAILURES
    if doublings >= 16:  # 5 s * 2**16 is far past the cap; no need to build huge numbers
        return MAX_DELAY
    return min(FIRST_DELAY * 2**doublings, MAX_DELAY)


def account_key(email: str) -> str:
    """One spelling per typed account address, for looking the account up and for throttling:
    ``JOSÉ@EXÄMPLE.COM``, ``josé@xn--exmple-cua.com`` and ``josé@exämple.com`` are one key.
    A string that is not an address at all is only trimmed and lower-cased: it is throttled
    like any other."""
    try:
        return normalize_address(email).lower()
    except EmailNotValidError:
        return email.strip().lower()


def throttle_address(remote_addr: str | None) -> str:
    """The client address as throttling counts it: IPv4 as is, IPv6 by its /64 network
    (``2001:db8::1`` and ``2001:db8::2`` are one client)."""
    if not remote_addr:
        return "unknown"
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return remote_addr[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is the IPv4 client 192.0.2.1
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class SessionEnd(Enum):
    """Why a staff session is no longer accepted; each has a sentence for the sign-in page."""

    ENDED = "Your session has ended. Please sign in again."
    IDLE = "You were signed out after a while without activity. Please sign in again."
    EXPIRED = "Your working-day session is over. Please sign in again."


def session_end(
    *,
    session_version: int | None,
    account_version: int,
    signed_in_at: float | None,
    last_seen_at: float | None,
    now: datetime,
    idle: timedelta,
    lifetime: timedelta,
) -> SessionEnd | None:
    """``None`` while the session may go on. Times in the session are POSIX timestamps (the
    cookie is signed, so they are ours); a session without them predates these rules."""
    if session_version != account_version or signed_in_at is None or last_seen_at is None:
        return SessionEnd.ENDED
    stamp = now.timestamp()
    if stamp - signed_in_at > lifetime.total_seconds():
        return SessionEnd.EXPIRED
    if stamp - last_seen_at > idle.total_seconds():
        return SessionEnd.IDLE
    return None
