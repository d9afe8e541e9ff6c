"""Who this bridge process is, and what it can prove about a predecessor that died.

A bridge names itself ``HOST:PID#INSTANCE``: host and PID for the operator who reads
``ca: skipped, mx1:4242 is working on it until …``, and a random instance id because host
and PID prove nothing. Two containers can have the same hostname and the same PID, and a PID
that does not exist in our PID namespace may be alive in another (issue 10: two bridges both
took a lease, then collided in the blob store).

What a process *can* prove is that a process on its own machine has died: each bridge takes
an exclusive ``flock`` on a marker file named after its instance, in this machine's temporary
directory, and keeps it until it exits. The kernel releases the lock when the process dies,
however it dies (SIGKILL, the OOM killer). So a marker we can lock belonged to a bridge on
this machine that is gone: our own dead predecessor, whose lease we may take at once. A
holder whose marker is not here (another machine, another container) or still locked (alive)
proves nothing, and its lease is waited out.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import re
import secrets
import socket
import stat
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_SEPARATOR = "#"
_INSTANCE = re.compile(r"[0-9a-f]{16}")
_OWNER_MAX = 128  # MailboxState.lease_owner

_current: tuple[int, str] | None = None  # (the PID it was made in, the instance id)
_marker: tuple[str, int] | None = None  # (the instance it proves alive, its locked file)


def host_and_pid() -> str:
    """``mx1:4242``: how operators recognise a bridge, never how bridges tell each other apart."""
    return f"{socket.gethostname()}:{os.getpid()}"


def instance_id() -> str:
    """This process's random id, made once (a forked child makes its own)."""
    global _current
    pid = os.getpid()
    if _current is None or _current[0] != pid:
        _current = (pid, secrets.token_hex(8))
    return _current[1]


def owner_name() -> str:
    """``mx1:4242#5f0c9a7e31b2d846``: this bridge, as a lease records it. Claims this process's
    marker first, so that its successor can prove its death."""
    instance = instance_id()
    _claim_marker(instance)
    suffix = f"{_SEPARATOR}{instance}"
    return host_and_pid()[: _OWNER_MAX - len(suffix)] + suffix


def readable(owner: str) -> str:
    """The ``HOST:PID`` part of an owner name, for messages to operators."""
    return owner.rpartition(_SEPARATOR)[0] or owner


def died_here(owner: str) -> bool:
    """Whether ``owner`` was a bridge on this machine that has died (see the module docstring).

    True at most once per dead bridge: its marker is removed, so call this just before taking
    over, and take over only with a conditional write (another successor may race us).
    """
    instance = owner.rpartition(_SEPARATOR)[2]
    directory = _directory()
    if not _INSTANCE.fullmatch(instance) or directory is None or instance == instance_id():
        return False
    path = directory / f"{instance}.alive"
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except OSError:  # no such marker here: not a bridge of this machine
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # locked: that bridge is alive
        os.close(fd)
        return False
    with contextlib.suppress(OSError):
        path.unlink()
    os.close(fd)
    return True


def _claim_marker(instance: str) -> None:
    """Create and lock this process's marker, once; without one, successors wait the lease out."""
    global _marker
    if _marker is not None and _marker[0] == instance:
        return
    directory = _directory()
    if directory is None:
        return
    path = directory / f"{instance}.alive"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        log.warning("no liveness marker (%s): a restart here will wait for the lease to end", exc)
        return
    _marker = (instance, fd)
    atexit.register(_release, path, fd)


def _release(path: Path, fd: int) -> None:
    """A clean exit: the lease is given back, so the marker has nothing left to prove."""
    with contextlib.suppress(OSError):
        path.unlink()
    with contextlib.suppress(OSError):
        os.close(fd)


def _directory() -> Path | None:
    """``$TMPDIR/portal-mailbridge-<uid>``, ours alone (mode 0700), or None if it cannot be
    (someone else made it first, or it is a symlink): markers there would prove nothing."""
    path = Path(tempfile.gettempdir()) / f"portal-mailbridge-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return path
