"""A private PostgreSQL server for tests: Debian's binaries, its own cluster, never the system one.

``initdb`` makes a cluster in a temporary directory; ``postgres`` serves it on a free port of
127.0.0.1 (and a socket in that directory), with durability switched off (``fsync``,
``synchronous_commit``, ``full_page_writes``): a test cluster that loses its data on a power
cut loses nothing of value, and tests run several times faster. PostgreSQL refuses to run as
root, so when we are root (CI, this machine) the cluster belongs to Debian's ``postgres`` user
and its processes run as that user.

Plain Python (no pytest here) so benchmarks and scripts can start the same server.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from tests.servers import HOST, free_port, wait_port_closed

PG_ROOT = Path("/usr/lib/postgresql")
# The cluster's superuser, the one the portal connects as in tests.
USER = "portal"


def postgres_bin_dir() -> Path | None:
    """``/usr/lib/postgresql/<major>/bin`` of the newest major version installed, or None.

    Debian installs each major version side by side; the ``postgresql`` package depends on the
    release's current one (15 on bookworm, 17 on trixie), so the version is found, not assumed.
    """
    found = []
    for binary in PG_ROOT.glob("*/bin/postgres"):
        version = binary.parent.parent.name
        if version.isdigit() and os.access(binary, os.X_OK):
            found.append((int(version), binary.parent))
    return max(found)[1] if found else None


def postgres_installed() -> bool:
    """Whether ``initdb`` and ``postgres`` exist on this machine."""
    bin_dir = postgres_bin_dir()
    return bin_dir is not None and os.access(bin_dir / "initdb", os.X_OK)


def _run_as() -> dict[str, Any]:
    """``subprocess`` arguments that drop root to ``postgres``; nothing when we are not root."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


class PostgresServer:
    """One private cluster rooted in ``base_dir``, listening on 127.0.0.1:port."""

    host: str
    port: int
    base_dir: Path

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise RuntimeError(f"PostgreSQL is not installed under {PG_ROOT}")
        self.bin_dir = bin_dir
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.base_dir = Path(base_dir).resolve()
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "run"
        self.log_path = self.base_dir / "postgres.log"
        self.password = secrets.token_urlsafe(16)
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def _initdb(self) -> None:
        """Make the cluster once: superuser ``portal`` with a password, UTF-8, C collation.

        The C collation sorts text by code point, as SQLite does, so both databases order
        names the same way. Passwords (SCRAM) on TCP: any local user could reach a trusting
        server on 127.0.0.1 while the tests run.
        """
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        password_file = self.base_dir / "password"
        password_file.touch(mode=0o600)
        password_file.write_text(self.password + "\n")
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.base_dir, self.socket_dir, password_file):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        result = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                USER,
                "--pwfile",
                str(password_file),
                "--auth-host",
                "scram-sha-256",
                "--auth-local",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            **_run_as(),
        )
        password_file.unlink()
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stderr[-2000:]}")

    def start(self) -> None:
        """Make the cluster if needed, start the server and wait until it takes connections."""
        if self.running():
            return
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(self.port),
                    "-c",
                    f"listen_addresses={self.host}",
                    "-c",
                    f"unix_socket_directories={self.socket_dir}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    # Every test makes a database and each web or bridge process in it has a
                    # pool; the default of 100 is near when tests start several processes.
                    "-c",
                    "max_connections=300",
                    "-c",
                    "timezone=UTC",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **_run_as(),
            )
        self._wait_ready(timeout=30.0)

    def _wait_ready(self, timeout: float) -> None:
        """Block until a login succeeds: during recovery the port is open but refuses logins."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self._process.returncode}:\n{self.diagnostics()}"
                )
            try:
                with self.connect():
                    return
            except psycopg.OperationalError as exc:
                last_error = exc
            time.sleep(0.05)
        raise RuntimeError(
            f"postgres did not accept logins on {self.host}:{self.port} within {timeout}s "
            f"({last_error}):\n{self.diagnostics()}"
        )

    def _postmaster_pid(self) -> int | None:
        """PID of our running postmaster (first line of ``postmaster.pid``), or None."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def running(self) -> bool:
        return self._postmaster_pid() is not None

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are ended, not waited for). Idempotent.

        SIGINT to the postmaster by its PID, then SIGQUIT and SIGKILL if it lingers. Its
        children (one backend per connection) end with it; the port is closed on return.
        """
        self._kill()
        wait_port_closed(self.host, self.port)

    def _kill(self) -> None:
        """Stop our postmaster by its PID, if it runs, without waiting for the port."""
        pid = self._postmaster_pid()
        if pid is not None:
            for sig, wait in ((signal.SIGINT, 20.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                if _wait_dead(pid, wait):
                    break
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
            self._process = None

    def restart(self) -> None:
        """Stop and start again on the same port, with the same databases."""
        self.stop()
        self.start()

    def remove(self) -> None:
        """Stop the server and delete its cluster."""
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def diagnostics(self) -> str:
        if not self.log_path.exists():
            return "(no postgres output)"
        lines = self.log_path.read_text(errors="replace").splitlines()[-30:]
        return f"--- {self.log_path} ---\n" + "\n".join(lines)

    # -- databases ---------------------------------------------------------------------------

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        """The SQLAlchemy URL of ``database`` (``postgresql+psycopg://portal:…@127.0.0.1:port/…``)."""
        return (
            f"{driver}://{USER}:{quote(self.password, safe='')}@{self.host}:{self.port}/"
            f"{quote(database, safe='')}"
        )

    def connect(self, database: str = "postgres") -> psycopg.Connection[Any]:
        """A psycopg connection in autocommit mode (``CREATE DATABASE`` refuses transactions)."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=USER,
            password=self.password,
            dbname=database,
            autocommit=True,
            connect_timeout=5,
        )

    def create_database(self, name: str, template: str = "template0") -> None:
        """A new database copied from ``template`` (template0: empty; or one we prepared).

        FILE_COPY copies the template's files and writes one checkpoint, which (without fsync)
        is quicker for our small databases than the WAL_LOG default of PostgreSQL 15.
        """
        _check_name(name)
        strategy = sql.SQL(" STRATEGY FILE_COPY") if self._version() >= 15 else sql.SQL("")
        with self.connect() as connection:
            connection.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
                + strategy
            )

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending its sessions (a test's subprocess may still hold one)."""
        _check_name(name)
        with self.connect() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def terminate_sessions(self, database: str) -> int:
        """End every session on ``database`` the way a server restart or a failover does."""
        with self.connect() as connection:
            row = connection.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchone()
        return int(row[0]) if row else 0

    def _version(self) -> int:
        return int(self.bin_dir.parent.name)


_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"not a plain database name: {name!r}")


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as dead: it holds no sockets)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def scratch_root() -> Path:
    """Where to put a test cluster: ``/dev/shm`` (memory) when it has room, else ``/tmp``.

    Every test creates and drops a database; on disk each of those waits on checkpoints
    (~0.3 s and ~0.1 to 0.8 s on a busy machine), in memory it takes a few hundredths.
    """
    shm = Path("/dev/shm")
    try:
        room = shutil.disk_usage(shm).free
    except OSError:
        return Path(tempfile.gettempdir())
    if room >= 1 << 30 and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return Path(tempfile.gettempdir())


def start_postgres(base_dir: Path) -> PostgresServer:
    """Start a private PostgreSQL in ``base_dir`` on a free port (retrying if it was taken)."""
    server = PostgresServer(base_dir)
    for attempt in range(3):
        try:
            server.start()
        except RuntimeError as exc:
            # Not stop(): when another program took the port, it will not close.
            server._kill()
            if "already in use" not in str(exc) or attempt == 2:
                raise
            server.port = free_port()
            continue
        return server
    raise AssertionError("unreachable")
