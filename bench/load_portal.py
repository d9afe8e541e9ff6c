"""The portal under load, set up as production runs it, on loopback only, in a temp dir.

:class:`PortalUnderTest` owns everything the load benchmark starts: a fresh SQLite database
made by the real migrations, staff accounts made by the real CLI, a real SMTP server
(aiosmtpd) standing in for the mail relay, gunicorn with its workers, and the outbox worker
(``flask --app wsgi outbox run``) when this version of the portal has one. ``close()`` stops
exactly those processes (each started in its own session, so its process group is its own)
and removes the temp dir; nothing else on the machine is touched.

The command-line tools run with the temp dir as their working directory and the repository on
``PYTHONPATH``, so a developer's ``.env`` in the repository never leaks into the measurement,
and every inherited ``PORTAL_*`` variable is dropped for the same reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pyotp
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPProtocol
from aiosmtpd.smtp import Envelope, Session

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
BIN = Path(sys.executable).parent
# Every filing is acknowledged by mail, and each request may file one: the per-IP limit
# (10 an hour by default) would refuse all but the first ten of the benchmark's filers, who
# all come from 127.0.0.1. Raised so the load reaches the app; documented in bench/README.md.
RATE_LIMIT_FOR_LOAD = "1000000 per hour"
CLI_TIMEOUT = 120.0
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ReceivedMail:
    rcpt_tos: tuple[str, ...]
    data: bytes
    at: float  # time.monotonic() on arrival


@dataclass
class MailSink:
    """An SMTP server on loopback that accepts everything, SMTPUTF8 included, and keeps it.

    The handler only appends: parsing is left for after the run, so the sink costs the
    benchmark's process as little CPU as possible while the portal is under load.
    """

    port: int = 0
    received: list[ReceivedMail] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    async def handle_DATA(self, server: SMTPProtocol, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        mail = ReceivedMail(tuple(map(str, envelope.rcpt_tos)), content, time.monotonic())
        with self._lock:
            self.received.append(mail)
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self.port = self.port or free_port()
        controller = Controller(
            self,
            hostname=HOST,
            port=self.port,
            server_hostname="relay.bench.test",
            ready_timeout=10.0,
            enable_SMTPUTF8=True,  # what a real relay (Postfix, Exim) offers today
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def snapshot(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self.received)


@dataclass(frozen=True)
class StaffAccount:
    email: str
    password: str
    totp_secret: str
    roles: tuple[str, ...]

    def code(self) -> str:
        return pyotp.TOTP(self.totp_secret).now()


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# Roles of the benchmark's staff, in turn: mostly Trust & Safety (their queue gets most
# requests), Legal for the DMCA notices, and an admin who sees everything.
STAFF_ROLES: Sequence[tuple[str, ...]] = (
    ("trust_safety",),
    ("trust_safety",),
    ("legal",),
    ("trust_safety",),
    ("admin",),
)


class PortalUnderTest:
    """Set up with :meth:`prepare`, serve with :meth:`start`, always :meth:`close`."""

    def __init__(self, *, workers: int, keep_dir: bool = False) -> None:
        self.workers = workers
        self.keep_dir = keep_dir
        self.dir = Path(tempfile.mkdtemp(prefix="bench-load-"))
        self.port = free_port()
        self.mail = MailSink()
        self.outbox_worker = False
        self._processes: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        self.env.update(
            {
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
                ),
                "PORTAL_DATABASE_URL": f"sqlite:///{self.dir / 'portal.sqlite3'}",
                "PORTAL_SECRET_KEY": secrets.token_urlsafe(48),
                "PORTAL_OUTBOX_DIR": str(self.dir / "outbox"),
                "PORTAL_BLOB_DIR": str(self.dir / "blobs"),
                "PORTAL_PUBLIC_URL": f"http://{HOST}:{self.port}",
                "PORTAL_REQUEST_RATE_LIMIT": RATE_LIMIT_FOR_LOAD,
                "PORTAL_RATELIMIT_STORAGE_URI": "memory://",
            }
        )

    # -- the command line ------------------------------------------------------------------

    def flask(
        self, *args: str, stdin: str | None = None, timeout: float = CLI_TIMEOUT
    ) -> CliResult:
        done = subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", *args],
            input=stdin.encode() if stdin is not None else None,
            capture_output=True,
            cwd=self.dir,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        return CliResult(
            done.returncode,
            done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"),
        )

    def _checked(self, *args: str, stdin: str | None = None) -> str:
        result = self.flask(*args, stdin=stdin)
        if result.returncode != 0:
            raise RuntimeError(
                f"flask {' '.join(args[:2])} failed ({result.returncode}): {result.stderr[-2000:]}"
            )
        return result.stdout

    def prepare(self, staff_count: int) -> list[StaffAccount]:
        """Migrate a fresh database, create the staff accounts, start the mail server."""
        self.mail.start()
        self.env["PORTAL_MAIL_SERVER"] = HOST
        self.env["PORTAL_MAIL_PORT"] = str(self.mail.port)
        self._checked("db", "upgrade")
        # Each command starts an interpreter and the app (seconds on a busy machine): the
        # independent ones run side by side.
        with ThreadPoolExecutor(max_workers=4) as pool:
            has_worker = pool.submit(self._has_outbox_worker)
            accounts = list(pool.map(self._create_staff, range(staff_count)))
            self.outbox_worker = has_worker.result()
        return accounts

    def _create_staff(self, number: int) -> StaffAccount:
        roles = STAFF_ROLES[number % len(STAFF_ROLES)]
        email = f"bench-staff-{number:02d}@foundation.example"
        password = secrets.token_urlsafe(18)
        args = ["staff", "create", email, "--password-stdin"]
        for role in roles:
            args += ["--role", role]
        output = self._checked(*args, stdin=password + "\n")
        found = re.search(r"otpauth://\S+", output)
        if not found:
            raise RuntimeError(f"staff create printed no otpauth:// URI for account {number}")
        totp = pyotp.parse_uri(found[0])
        assert isinstance(totp, pyotp.TOTP)
        return StaffAccount(email, password, totp.secret, roles)

    def _has_outbox_worker(self) -> bool:
        """Whether ``flask --app wsgi outbox run`` exists in this version of the portal."""
        result = self.flask("outbox", "--help")
        commands = result.stdout.partition("Commands:")[2]
        return re.search(r"^\s+run\b", commands, re.MULTILINE) is not None

    # -- the servers -----------------------------------------------------------------------

    def start(self) -> None:
        """Start gunicorn (and the outbox worker, if any) and wait until the portal answers."""
        self._spawn(
            "gunicorn",
            [
                str(BIN / "gunicorn"),
                "--workers",
                str(self.workers),
                "--bind",
                f"{HOST}:{self.port}",
                "--pythonpath",
                str(ROOT),
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                "wsgi:app",
            ],
        )
        if self.outbox_worker:
            self._spawn("outbox-worker", [str(BIN / "flask"), "--app", "wsgi", "outbox", "run"])
        self._wait_until_serving()

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.dir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            argv,
            cwd=self.dir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole, and alone
        )
        self._processes.append((name, process, log))

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for name, process, _ in self._processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited at start: {self.log_tail(name)}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not listen within {START_TIMEOUT:.0f} s")

    def log_tail(self, name: str, chars: int = 2000) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text("utf-8", "replace")[-chars:] if path.exists() else ""

    def running(self) -> dict[str, bool]:
        return {name: process.poll() is None for name, process, _ in self._processes}

    def stop_servers(self) -> None:
        """SIGTERM to each process group we started, then SIGKILL to what is left."""
        for _, process, _ in self._processes:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for _, process, log in self._processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                # Not reaped yet, so its process group id cannot belong to anyone else.
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=5)
            log.close()
        self._processes.clear()

    def cpu_seconds(self) -> float:
        """CPU time used so far by every live process of the groups we started (gunicorn's
        master and workers, the outbox worker), from /proc."""
        groups = {process.pid for _, process, _ in self._processes}
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # gone meanwhile
            if int(fields[2]) in groups:  # pgrp
                total += int(fields[11]) + int(fields[12])  # utime + stime, in ticks
        return total / _TICKS

    def pids(self) -> list[int]:
        return [process.pid for _, process, _ in self._processes]

    def close(self) -> None:
        try:
            self.stop_servers()
        finally:
            self.mail.stop()
            if not self.keep_dir:
                shutil.rmtree(self.dir, ignore_errors=True)


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot, every core summed."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / _TICKS, sum(fields[:8]) / _TICKS


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the process group that ``process`` leads (we started it with its own session).

    Only while the leader is not reaped: until then its id is not free for another process.
    """
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
