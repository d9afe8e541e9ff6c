"""``PORTAL_ENV=production`` refuses a configuration that would run, but not safely.

Issue: "PostgreSQL as a first-class database, and a deployment an operations team can run",
*A production deployment*: refuse a generated secret key, a missing audit key, the in-memory
rate-limit store under several workers, and SQLite on a network filesystem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portal.config import ConfigurationError
from portal.production import (
    filesystem_of,
    is_network_filesystem,
    production_refusals,
    sqlite_file,
)
from tests.conftest import make_app

# A real /proc/self/mountinfo of a host with its data on NFS, a Samba share, sshfs and a
# mount point with a space in its name (escaped as \040, as the kernel writes it).
MOUNTINFO = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
30 27 0:27 / /srv rw,relatime shared:5 - ext4 /dev/vdb1 rw
31 30 0:45 / /srv/portal rw,relatime shared:7 - nfs4 files.example.org:/export/portal rw,vers=4.2
32 31 0:46 / /srv/portal/local rw,relatime - ext4 /dev/vdc1 rw
33 27 0:47 / /mnt/share rw,relatime - cifs //nas/share rw,vers=3.1.1
34 27 0:48 / /mnt/remote rw,nosuid,nodev - fuse.sshfs backup@host:/data rw,user_id=1000
35 27 0:49 / /mnt/my\040data rw,relatime - 9p data rw,trans=virtio
36 27 0:50 / /srv/portal/local rw,relatime - tmpfs tmpfs rw
"""

PRODUCTION: dict[str, Any] = {
    "ENV": "production",
    "SECRET_KEY": "s" * 64,
    "AUDIT_KEY": "kept in the secrets store",
    "RATELIMIT_STORAGE_URI": "database://",
    "SQLALCHEMY_DATABASE_URI": "sqlite:////var/lib/portal/portal.sqlite3",
}


def refusals(database_filesystem: str | None = "ext4", **changes: Any) -> list[str]:
    config = {**PRODUCTION, **changes}
    return production_refusals(
        config,
        secret_key_generated=not config["SECRET_KEY"],
        database_filesystem=database_filesystem,
    )


def test_a_complete_production_configuration_is_accepted() -> None:
    assert refusals() == []


def test_development_refuses_nothing() -> None:
    assert (
        refusals(
            "nfs4",
            ENV="development",
            SECRET_KEY=None,
            AUDIT_KEY=None,
            RATELIMIT_STORAGE_URI="memory://",
        )
        == []
    )


@pytest.mark.parametrize(
    ("changes", "filesystem", "variable"),
    [
        ({"SECRET_KEY": None}, "ext4", "PORTAL_SECRET_KEY"),
        ({"AUDIT_KEY": None}, "ext4", "PORTAL_AUDIT_KEY"),
        ({"AUDIT_KEY": ""}, "ext4", "PORTAL_AUDIT_KEY"),
        ({"RATELIMIT_STORAGE_URI": "memory://"}, "ext4", "PORTAL_RATELIMIT_STORAGE_URI"),
        ({}, "nfs4", "PORTAL_DATABASE_URL"),
        ({}, "fuse.sshfs", "PORTAL_DATABASE_URL"),
    ],
)
def test_each_refusal_is_one_sentence_naming_the_variable_to_set(
    changes: dict[str, Any], filesystem: str, variable: str
) -> None:
    [refusal] = refusals(filesystem, **changes)
    assert refusal.startswith(variable + " ")
    assert refusal.endswith(".")
    assert refusal.count(". ") == 0  # one sentence
    assert "\n" not in refusal


def test_every_refusal_is_reported_at_once() -> None:
    found = refusals("cifs", SECRET_KEY=None, AUDIT_KEY=None, RATELIMIT_STORAGE_URI="memory://")
    assert [line.split()[0] for line in found] == [
        "PORTAL_SECRET_KEY",
        "PORTAL_AUDIT_KEY",
        "PORTAL_RATELIMIT_STORAGE_URI",
        "PORTAL_DATABASE_URL",
    ]


def test_the_network_refusal_names_the_file_and_its_filesystem_but_no_secret() -> None:
    [refusal] = refusals("nfs4")
    assert "/var/lib/portal/portal.sqlite3" in refusal
    assert "nfs4" in refusal
    [refusal] = refusals(RATELIMIT_STORAGE_URI="memory://")
    assert "redis://" in refusal  # the remedy, not the configured value


def test_postgresql_is_never_refused_for_its_filesystem() -> None:
    assert refusals("nfs4", SQLALCHEMY_DATABASE_URI="postgresql+psycopg://portal@db/portal") == []


def test_an_unknown_filesystem_is_not_refused() -> None:
    """No /proc (not Linux): nothing to go on, so nothing is claimed."""
    assert refusals(None) == []


@pytest.mark.parametrize(
    ("path", "filesystem"),
    [
        ("/var/lib/portal/portal.sqlite3", "ext4"),
        ("/srv/other/portal.sqlite3", "ext4"),
        ("/srv/portal/portal.sqlite3", "nfs4"),
        ("/srv/portal", "nfs4"),
        ("/srv/portalx/portal.sqlite3", "ext4"),  # a mount point is a whole path component
        # Two mounts on one point: the later one hides the earlier.
        ("/srv/portal/local/portal.sqlite3", "tmpfs"),
        ("/mnt/share/db/portal.sqlite3", "cifs"),
        ("/mnt/remote/portal.sqlite3", "fuse.sshfs"),
        ("/mnt/my data/portal.sqlite3", "9p"),
        ("/", "ext4"),
    ],
)
def test_the_filesystem_of_a_path_is_read_from_mountinfo(path: str, filesystem: str) -> None:
    assert filesystem_of(path, MOUNTINFO) == filesystem


def test_no_mounts_means_no_answer() -> None:
    assert filesystem_of("/var/lib/portal.sqlite3", "") is None
    assert filesystem_of("/var/lib/portal.sqlite3", "garbage without a separator\n") is None


@pytest.mark.parametrize(
    "fstype", ["nfs", "nfs4", "cifs", "smb3", "9p", "fuse.sshfs", "ceph", "glusterfs", "afs"]
)
def test_network_filesystems(fstype: str) -> None:
    assert is_network_filesystem(fstype)


@pytest.mark.parametrize("fstype", ["ext4", "xfs", "btrfs", "zfs", "tmpfs", "overlay", "fuse"])
def test_local_filesystems(fstype: str) -> None:
    assert not is_network_filesystem(fstype)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////var/lib/portal/portal.sqlite3", "/var/lib/portal/portal.sqlite3"),
        ("sqlite:///relative.sqlite3", "relative.sqlite3"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql+psycopg://portal:secret@db.example.org/portal", None),
    ],
)
def test_the_sqlite_file_of_a_database_url(url: str, expected: str | None) -> None:
    found = sqlite_file(url)
    assert (str(found) if found else None) == expected


# The checks come before any database is opened; these apps never open theirs.
UNOPENED = "sqlite://"


# -- the app refuses to start -------------------------------------------------------------


def test_production_refuses_to_start_with_a_generated_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PORTAL_SECRET_KEY") as refused:
        make_app(
            tmp_path,
            ENV="production",
            SECRET_KEY=None,
            SQLALCHEMY_DATABASE_URI=UNOPENED,
            AUDIT_KEY="kept in the secrets store",
            RATELIMIT_STORAGE_URI="database://",
        )
    assert str(refused.value).count("\n") == 0  # only that


def test_production_refuses_the_in_memory_rate_limit_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PORTAL_RATELIMIT_STORAGE_URI"):
        make_app(
            tmp_path,
            ENV="production",
            AUDIT_KEY="kept in the secrets store",
            SQLALCHEMY_DATABASE_URI=UNOPENED,
        )


def test_production_starts_with_everything_set(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        ENV="production",
        AUDIT_KEY="kept in the secrets store",
        RATELIMIT_STORAGE_URI="database://",
        SQLALCHEMY_DATABASE_URI=UNOPENED,
    )
    assert app.config["ENV"] == "production"
