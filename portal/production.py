"""What ``PORTAL_ENV=production`` refuses: configurations that run, but not safely.

Each refusal is one sentence that starts with the variable to set, and all of them are
reported at once, so an operator fixes the environment file in one go rather than one restart
per mistake:

- a secret key generated into ``instance/secret_key``: it differs on every host (a session
  signed by one is refused by the next) and is lost with the instance folder;
- no ``PORTAL_AUDIT_KEY``: the audit chain would be keyed by something derived from the
  secret key, so whoever holds that could re-hash an edited trail;
- the in-memory rate-limit store: production runs several gunicorn workers (and perhaps
  several hosts), each counting apart, so every limit is multiplied by their number and
  forgotten on every restart;
- SQLite on a network filesystem (NFS, SMB, sshfs, Ceph, ...): its locks are unreliable
  there, and WAL's shared memory does not work across hosts at all: two writers corrupt it.

:func:`production_refusals` decides from facts passed in (pure, tested directly);
:func:`check` gathers the facts (the database file's filesystem from ``/proc/self/mountinfo``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.engine import make_url

MOUNTINFO = Path("/proc/self/mountinfo")

# Filesystem types (as mountinfo names them) whose files live on another machine. SQLite's
# own advice: https://www.sqlite.org/useovernet.html. A plain "fuse" says nothing either way.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "ceph",
        "fuse.ceph",
        "fuse.ceph-fuse",
        "glusterfs",
        "fuse.glusterfs",
        "fuse.sshfs",
        "sshfs",
        "afs",
        "lustre",
        "gpfs",
        "beegfs",
        "davfs",
        "fuse.davfs2",
        "fuse.s3fs",
        "fuse.rclone",
        "fuse.gcsfuse",
        "fuse.juicefs",
        "ncpfs",
        "coda",
    }
)

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def production_refusals(
    config: Mapping[str, Any], *, secret_key_generated: bool, database_filesystem: str | None
) -> list[str]:
    """Every reason this configuration must not run in production (none outside it).

    ``secret_key_generated``: no ``PORTAL_SECRET_KEY`` was given, so the key would come from
    ``instance/secret_key``. ``database_filesystem``: the type of the filesystem holding the
    SQLite file (None for another database, or when it cannot be told).
    """
    if config.get("ENV") != "production":
        return []
    refusals = []
    if secret_key_generated:
        refusals.append(
            "PORTAL_SECRET_KEY must be set when PORTAL_ENV=production, to the same long random "
            "value on every host (made with `python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`): a key generated into instance/secret_key "
            "differs from host to host and is lost with the instance folder."
        )
    if not config.get("AUDIT_KEY"):
        refusals.append(
            "PORTAL_AUDIT_KEY must be set when PORTAL_ENV=production: it keys the audit "
            "trail's hash chain and is kept outside the database."
        )
    if str(config.get("RATELIMIT_STORAGE_URI") or "memory://").startswith("memory://"):
        refusals.append(
            "PORTAL_RATELIMIT_STORAGE_URI must name a shared store when PORTAL_ENV=production "
            "(database:// for the portal's own database, or redis://HOST:6379/0): the "
            "in-memory store counts in each worker process apart, so every limit multiplies "
            "by the number of workers and starts again at every restart."
        )
    database = sqlite_file(str(config.get("SQLALCHEMY_DATABASE_URI") or ""))
    if database is not None and database_filesystem and is_network_filesystem(database_filesystem):
        refusals.append(
            f"PORTAL_DATABASE_URL must not put SQLite on a network filesystem when "
            f"PORTAL_ENV=production ({database} is on {database_filesystem}, where SQLite's "
            f"locking is unreliable and a database written from two hosts gets corrupted): "
            f"use PostgreSQL, or a file on a local disk."
        )
    return refusals


def check(config: Mapping[str, Any], *, secret_key_generated: bool) -> list[str]:
    """:func:`production_refusals`, with the database file's filesystem looked up."""
    if config.get("ENV") != "production":
        return []
    database = sqlite_file(str(config.get("SQLALCHEMY_DATABASE_URI") or ""))
    filesystem = None
    if database is not None:
        try:
            mountinfo = MOUNTINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            mountinfo = ""  # not Linux: nothing to go on
        filesystem = filesystem_of(str(database.resolve()), mountinfo)
    return production_refusals(
        config, secret_key_generated=secret_key_generated, database_filesystem=filesystem
    )


def sqlite_file(database_url: str) -> Path | None:
    """The file a SQLite URL names; None for an in-memory database or another backend."""
    try:
        url = make_url(database_url)
    except Exception:
        return None
    if url.get_backend_name() != "sqlite":
        return None
    name = url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def is_network_filesystem(fstype: str) -> bool:
    return fstype.lower() in NETWORK_FILESYSTEMS


@dataclass(frozen=True)
class Mount:
    mount_point: str
    fstype: str


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of ``/proc/PID/mountinfo`` in the kernel's order (proc(5)).

    A line: ``36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw``: the mount
    point is field 5 (with space, tab, newline and backslash written as octal escapes such as
    ``\\040``); the filesystem type comes right after the ``-`` that ends the optional fields.
    Lines that do not look like that are skipped.
    """
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        if "-" not in fields[6:] or len(fields) < 7:
            continue
        separator = fields.index("-", 6)
        if separator + 1 >= len(fields):
            continue
        point = _OCTAL_ESCAPE.sub(lambda m: chr(int(m[1], 8)), fields[4])
        mounts.append(Mount(mount_point=point, fstype=fields[separator + 1]))
    return mounts


def filesystem_of(path: str, mountinfo: str) -> str | None:
    """The type of the filesystem ``path`` (absolute, symlinks resolved) is on.

    The mount whose mount point is the longest leading part of the path, counted in whole
    components; of several mounts on one point the last, which hides the ones before it.
    """
    parts = PurePosixPath(path).parts
    best: Mount | None = None
    best_depth = -1
    for mount in parse_mountinfo(mountinfo):
        point = PurePosixPath(mount.mount_point).parts
        if parts[: len(point)] == point and len(point) >= best_depth:
            best, best_depth = mount, len(point)
    return best.fstype if best else None
