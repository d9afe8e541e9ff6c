"""Seed a private Dovecot with the benchmark corpus (issue 3), fast: one connection, MULTIAPPEND.

As a library::

    with private_dovecot() as server:
        box = seed_mailbox(server, "bench5k", count=5000)   # Mailbox(url=..., seconds=...)

As a script it starts a server, seeds one mailbox, prints what it did and removes everything
again (useful to check the corpus and the APPEND rate on its own)::

    .venv/bin/python -m bench.seed_mailbox [--count 5000] [--seed 1] [--arrival header|now]

RFC 3502 MULTIAPPEND sends a whole batch in one command, and with LITERAL+ (Dovecot has both)
IMAPClient writes every literal without waiting for a continuation, so a batch costs one round
trip. The server is the one the tests use (``tests.servers.dovecot``), rooted in a fresh
directory under /tmp: Dovecot's mail processes run as ``mail`` and cannot enter pytest's or
``mkdtemp``'s 0700 directories, so the base directory is opened to 0711 by the server itself.

``arrival`` chooses each message's INTERNALDATE, which the bridge takes as its arrival time:
``header`` (the default) uses the message's own Date header, as a mailbox that has been
collecting mail for months looks on a first sync; ``now`` makes every message fresh, so the
bridge's 3-day acknowledgement rule lets acknowledgements through.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from bench import corpus
from tests.servers.dovecot import DovecotServer, dovecot_installed, start_dovecot

APPEND_BATCH = 250  # messages per MULTIAPPEND command (about 2.5 MB with this corpus)
FOLDER = "INBOX"


@dataclass(frozen=True)
class Mailbox:
    """A seeded Dovecot user: where it is, how to log in, and what seeding cost."""

    server: DovecotServer
    user: str
    password: str
    count: int
    bytes: int
    seconds: float  # APPEND time only (generating the corpus is not counted)
    arrival: str

    @property
    def url(self) -> str:
        """``imap://USER:PASS@127.0.0.1:PORT/INBOX``, user and password percent-encoded."""
        return self.server.url(self.user, self.password, FOLDER)

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    def client(self) -> Any:
        """A logged-in IMAPClient; the caller logs out (use it as a context manager)."""
        return self.server.client(self.user, self.password)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


@contextlib.contextmanager
def private_dovecot() -> Iterator[DovecotServer]:
    """A private Dovecot in a fresh directory under /tmp, stopped and deleted afterwards."""
    if not dovecot_installed():
        raise RuntimeError("Dovecot is not installed (/usr/sbin/dovecot, /usr/bin/doveadm)")
    base = Path(tempfile.mkdtemp(prefix="mailbridge-bench-dovecot-", dir="/tmp"))
    server: DovecotServer | None = None
    try:
        server = start_dovecot(base)
        yield server
    finally:
        try:
            if server is not None:
                server.stop()
                server.remove()
        finally:
            shutil.rmtree(base, ignore_errors=True)


def add_user(server: DovecotServer, user: str) -> str:
    """Create ``user`` with a password that needs percent-encoding in a URL; return it."""
    password = f"p@ss:{secrets.token_hex(6)}/%"
    # ':' is the passwd-file separator: keep the awkward characters URL-only.
    password = password.replace(":", "#")
    server.add_user(user, password)
    return password


def arrival_date(raw: bytes) -> datetime | None:
    """The Date header of ``raw`` as an aware datetime, or None when it is missing or bad."""
    try:
        value = BytesHeaderParser(policy=compat32).parsebytes(raw).get("Date")
        when = parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _items(raws: Iterable[bytes], arrival: str) -> Iterator[dict[str, Any]]:
    for raw in raws:
        item: dict[str, Any] = {"msg": raw}
        if arrival == "header":
            when = arrival_date(raw)
            if when is not None:
                item["date"] = when
        yield item


def _batches(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def append_messages(
    server: DovecotServer,
    user: str,
    password: str,
    raws: Iterable[bytes],
    *,
    arrival: str = "header",
    batch: int = APPEND_BATCH,
) -> tuple[int, int, float]:
    """APPEND ``raws`` to INBOX over one connection; returns (count, bytes, seconds).

    ``raws`` is consumed batch by batch, so memory holds one batch, not the mailbox. The time
    counts only the IMAP commands, not producing the messages.
    """
    if arrival not in ("header", "now"):
        raise ValueError("arrival is 'header' or 'now'")
    count = size = 0
    spent = 0.0
    with server.client(user, password) as client:
        multi = client.has_capability("MULTIAPPEND")
        for chunk in _batches(_items(raws, arrival), batch):
            started = time.perf_counter()
            if multi:
                client.multiappend(FOLDER, chunk)
            else:
                for item in chunk:
                    client.append(FOLDER, item["msg"], msg_time=item.get("date"))
            spent += time.perf_counter() - started
            count += len(chunk)
            size += sum(len(item["msg"]) for item in chunk)
        exists = int(client.folder_status(FOLDER, [b"MESSAGES"])[b"MESSAGES"])
    if exists < count:
        raise RuntimeError(f"{user}: appended {count} messages but INBOX holds {exists}")
    return count, size, spent


def seed_mailbox(
    server: DovecotServer,
    user: str,
    *,
    count: int = 5000,
    seed: int = 1,
    arrival: str = "header",
    messages: Iterable[bytes] | None = None,
) -> Mailbox:
    """Create ``user`` and APPEND ``count`` corpus messages (or ``messages``) to its INBOX."""
    password = add_user(server, user)
    raws = messages if messages is not None else corpus.generate(count, seed)
    appended, size, seconds = append_messages(server, user, password, raws, arrival=arrival)
    return Mailbox(server, user, password, appended, size, seconds, arrival)


def empty_mailbox(server: DovecotServer, user: str) -> Mailbox:
    """Create ``user`` with an empty INBOX (selectable at once)."""
    password = add_user(server, user)
    with server.client(user, password) as client:
        client.select_folder(FOLDER, readonly=True)
    return Mailbox(server, user, password, 0, 0, 0.0, "now")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--arrival", choices=("header", "now"), default="header")
    args = parser.parse_args(argv)
    with private_dovecot() as server:
        raws = list(corpus.generate(args.count, args.seed))
        box = seed_mailbox(server, "bench", arrival=args.arrival, messages=raws)
        with box.client() as client:
            caps = sorted(c.decode() for c in client.capabilities())
        print(f"dovecot on {server.host}:{server.port}, capabilities: {' '.join(caps)}")
        print(
            f"appended {box.count} messages ({box.bytes / 1e6:.1f} MB) in {box.seconds:.2f} s "
            f"= {box.rate:.0f} msg/s (MULTIAPPEND, batches of {APPEND_BATCH})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
