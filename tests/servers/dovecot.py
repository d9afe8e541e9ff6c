"""A private Dovecot IMAP server for tests: real IMAP, its own config, never the system service.

Plain Python (no pytest here) so benchmarks and scripts can start the same server.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import imapclient

from tests.servers import HOST, free_port, wait_port_closed

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"

_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)


def dovecot_installed() -> bool:
    """Whether the Dovecot binaries this module drives exist on this machine."""
    return os.access(DOVECOT, os.X_OK) and os.access(DOVEADM, os.X_OK)


@functools.cache
def dovecot_version() -> tuple[int, int]:
    """Major and minor version: config key names changed between 2.3 and 2.4."""
    out = subprocess.run(
        [DOVECOT, "--version"], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    match = re.match(r"(\d+)\.(\d+)", out.strip())
    if match is None:
        raise RuntimeError(f"cannot parse dovecot version from {out!r}")
    return int(match.group(1)), int(match.group(2))


def _render_config_23(
    *,
    run_dir: Path,
    state_dir: Path,
    log_path: Path,
    users_dir: Path,
    port: int,
    uid: int,
    gid: int,
) -> str:
    """dovecot.conf for the 2.3 series (Debian bookworm ships 2.3.19)."""
    return f"""\
# Written by tests/servers/dovecot.py: a private test instance, not the system service.
base_dir = {run_dir}
state_dir = {state_dir}
log_path = {log_path}
info_log_path = {log_path}
debug_log_path = {log_path}
instance_name = test-dovecot-{port}

protocols = imap
listen = {HOST}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# Failed logins answer at once: tests of wrong passwords must not sleep 2 s each.
auth_failure_delay = 0
auth_verbose = yes

# One passwd-file per user: Dovecot rereads a passwd-file at most once a second, so a user
# added to a shared file right after a lookup would be "unknown" for up to a second.
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users_dir}/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users_dir}/%u
}}

mail_location = maildir:~/Maildir
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}

# IDLE: look at the mailbox every second (inotify usually wakes it sooner) and keep the
# "OK Still here" keep-alives frequent so IDLE loops in tests never stall.
mailbox_idle_check_interval = 1 secs
imap_idle_notify_interval = 1 secs
mail_max_userip_connections = 200

default_process_limit = 500
default_client_limit = 2000

service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  # High-performance mode: benchmarks open many connections quickly.
  service_count = 0
  process_min_avail = 2
}}
service imap {{
  process_limit = 500
}}
"""


def _render_config_24(
    *,
    run_dir: Path,
    state_dir: Path,
    log_path: Path,
    users_dir: Path,
    port: int,
    uid: int,
    gid: int,
) -> str:
    """dovecot.conf for 2.4+ (Debian trixie), whose settings were renamed.

    Written from the 2.4 upgrade notes; only the 2.3 variant has been run on our machines.
    """
    return f"""\
# Written by tests/servers/dovecot.py: a private test instance, not the system service.
dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
base_dir = {run_dir}
state_dir = {state_dir}
log_path = {log_path}
info_log_path = {log_path}
debug_log_path = {log_path}
instance_name = test-dovecot-{port}

protocols = imap
listen = {HOST}
ssl = no
auth_allow_cleartext = yes
auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = yes

passdb passwd-file {{
  passwd_file_path = {users_dir}/%{{user}}
}}
userdb passwd-file {{
  passwd_file_path = {users_dir}/%{{user}}
}}

mail_driver = maildir
mail_path = ~/Maildir
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}

mailbox_idle_check_interval = 1 secs
imap_idle_notify_interval = 1 secs
mail_max_userip_connections = 200

default_process_limit = 500
default_client_limit = 2000

service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  restart_request_count = unlimited
  process_min_avail = 2
}}
service imap {{
  process_limit = 500
}}
"""


class DovecotServer:
    """One private Dovecot instance rooted in ``base_dir``, listening on 127.0.0.1:port."""

    host: str
    port: int
    base_dir: Path

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.base_dir = Path(base_dir).resolve()
        self.run_dir = self.base_dir / "run"
        self.state_dir = self.base_dir / "state"
        self.home_root = self.base_dir / "home"
        self.log_path = self.base_dir / "dovecot.log"
        self.stdout_path = self.base_dir / "dovecot.stdout"
        self.users_dir = self.base_dir / "users"
        self.config_path = self.base_dir / "dovecot.conf"
        mail = pwd.getpwnam("mail")
        self.mail_uid = mail.pw_uid
        self.mail_gid = mail.pw_gid

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def pid_file(self) -> Path:
        """Where the master writes its PID (Dovecot's own base_dir)."""
        return self.run_dir / "master.pid"

    def _write_config(self) -> None:
        """Lay out the directories and the config; mail processes run as ``mail``."""
        self._check_traversable()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # ``mail`` (mail processes) and ``dovecot`` (auth) must reach files in here.
        self.base_dir.chmod(0o711)
        for directory in (self.run_dir, self.state_dir):
            directory.mkdir(exist_ok=True)
        self.home_root.mkdir(exist_ok=True)
        self.home_root.chmod(0o711)
        self.users_dir.mkdir(exist_ok=True)
        self.users_dir.chmod(0o755)
        render = _render_config_24 if dovecot_version() >= (2, 4) else _render_config_23
        self.config_path.write_text(
            render(
                run_dir=self.run_dir,
                state_dir=self.state_dir,
                log_path=self.log_path,
                users_dir=self.users_dir,
                port=self.port,
                uid=self.mail_uid,
                gid=self.mail_gid,
            )
        )

    def _check_traversable(self) -> None:
        """Fail clearly when ``mail`` could not reach its Maildir (e.g. pytest's 0700 tmp)."""
        for parent in self.base_dir.parents:
            if parent.exists() and not parent.stat().st_mode & 0o001:
                raise RuntimeError(
                    f"{parent} is not traversable by other users, so Dovecot's mail processes "
                    f"(user mail) cannot reach {self.base_dir}; use a directory under /tmp"
                )

    def start(self) -> None:
        """Write the config, start the daemon and wait for the IMAP greeting."""
        if self.running():
            return
        self._write_config()
        with self.stdout_path.open("ab") as out:
            # Dovecot daemonizes and keeps inherited fds: a file, never a pipe.
            proc = subprocess.Popen(
                [DOVECOT, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            rc = proc.wait(timeout=30)
        if rc != 0:
            raise RuntimeError(f"dovecot exited with {rc}:\n{self.diagnostics()}")
        self._wait_greeting(timeout=15.0)

    def _wait_greeting(self, timeout: float) -> None:
        """Block until the listener answers with ``* OK``: accepting alone is not ready."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as sock:
                    greeting = sock.recv(1024)
                if greeting.startswith(b"* OK"):
                    return
                last_error = RuntimeError(f"unexpected greeting {greeting!r}")
            except OSError as exc:
                last_error = exc
            time.sleep(0.05)
        raise RuntimeError(
            f"dovecot did not greet on {self.host}:{self.port} within {timeout}s "
            f"({last_error}):\n{self.diagnostics()}"
        )

    def _master_pid(self) -> int | None:
        """PID of the running master, or None when there is none."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def running(self) -> bool:
        """Whether our master process is alive."""
        return self._master_pid() is not None

    def stop(self) -> None:
        """Stop every process of this instance and wait until the port is closed. Idempotent.

        The master runs in its own session, so its PID is also its process group. The whole
        group gets SIGTERM: killing only the master leaves logged-in ``imap`` processes
        serving their clients, which is not what a server outage looks like.
        """
        self._kill()
        wait_port_closed(self.host, self.port)

    def _kill(self) -> None:
        """Terminate the process group of our master, if it runs; SIGKILL after 10 s."""
        pid = self._master_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        if not _wait_group_dead(pid, timeout=10.0):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _wait_group_dead(pid, timeout=5.0)

    def restart(self) -> None:
        """Stop and start again on the same port and with the same users and mail."""
        self.stop()
        self.start()

    def diagnostics(self) -> str:
        """The tail of the log files, for error messages that explain themselves."""
        parts = []
        for path in (self.stdout_path, self.log_path):
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-30:]
                parts.append(f"--- {path} ---\n" + "\n".join(lines))
        return "\n".join(parts) or "(no dovecot output)"

    # -- users -------------------------------------------------------------------------------

    def add_user(self, user: str, password: str) -> None:
        """Create (or re-password) a mailbox user whose home belongs to ``mail``."""
        for value in (user, password):
            if not value or any(ch in value for ch in ":\n\r\0"):
                raise ValueError(f"unusable in a passwd-file: {value!r}")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@+-]*", user):
            raise ValueError(f"use letters, digits and ._@+- in test user names: {user!r}")
        home = self.home_root / user
        home.mkdir(parents=True, exist_ok=True)
        (home / "Maildir").mkdir(exist_ok=True)
        for path in (home, home / "Maildir"):
            os.chown(path, self.mail_uid, self.mail_gid)
            path.chmod(0o700)
        entry = f"{user}:{{PLAIN}}{password}:{self.mail_uid}:{self.mail_gid}::{home}::\n"
        # Written atomically: the auth process may read the file at any moment.
        tmp = self.users_dir / f".{user}.tmp"
        tmp.write_text(entry)
        tmp.chmod(0o644)
        tmp.replace(self.users_dir / user)

    # -- IMAP helpers ------------------------------------------------------------------------

    def client(self, user: str, password: str) -> imapclient.IMAPClient:
        """A logged-in IMAPClient; the caller logs out (or uses it as a context manager)."""
        client = imapclient.IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        try:
            client.login(user, password)
        except Exception:
            client.shutdown()
            raise
        return client

    def url(self, user: str, password: str, folder: str = "INBOX") -> str:
        """``imap://USER:PASS@HOST:PORT/FOLDER`` with user, password and folder percent-encoded."""
        return (
            f"imap://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.port}/{quote(folder, safe='')}"
        )

    def append(self, user: str, password: str, raw: bytes, folder: str = "INBOX") -> int:
        """Deliver ``raw`` by IMAP APPEND and return its UID (from UIDPLUS's APPENDUID)."""
        with self.client(user, password) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            response = client.append(folder, raw)
            match = _APPENDUID.search(response or b"")
            if match is not None:
                return int(match.group(2))
            # No UIDPLUS: the newest message is the one we just added.
            client.select_folder(folder, readonly=True)
            return int(max(client.search("ALL")))

    def uidvalidity(self, user: str, password: str, folder: str = "INBOX") -> int:
        """The folder's current UIDVALIDITY."""
        with self.client(user, password) as client:
            return int(client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])

    def recreate_folder(self, user: str, password: str, folder: str = "INBOX") -> None:
        """Give ``folder`` a new UIDVALIDITY and keep its messages (with new UIDs).

        Other folders are deleted and created again over IMAP, as a user would. INBOX cannot
        be deleted in IMAP, so its messages are expunged and its UIDVALIDITY is bumped with
        ``doveadm mailbox update --uid-validity`` before the messages are appended again.
        """
        old_validity = self.uidvalidity(user, password, folder)
        with self.client(user, password) as client:
            client.select_folder(folder)
            uids = client.search("ALL")
            saved = (
                client.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"]).values()
                if uids
                else []
            )
            messages = [
                (
                    data[b"BODY[]"],
                    tuple(f for f in data[b"FLAGS"] if f != b"\\Recent"),
                    data[b"INTERNALDATE"],
                )
                for data in saved
            ]
            if folder.upper() == "INBOX":
                if uids:
                    client.delete_messages(uids)
                    client.expunge()
                client.close_folder()
            else:
                client.close_folder()
                client.delete_folder(folder)
                client.create_folder(folder)
        if folder.upper() == "INBOX":
            self._doveadm(
                "mailbox",
                "update",
                "--uid-validity",
                str(max(old_validity + 1, int(time.time()))),
                "-u",
                user,
                folder,
            )
        with self.client(user, password) as client:
            for raw, flags, when in messages:
                client.append(folder, raw, flags=flags, msg_time=when)
        new_validity = self.uidvalidity(user, password, folder)
        if new_validity == old_validity:
            raise RuntimeError(f"UIDVALIDITY of {user}/{folder} did not change ({old_validity})")

    def _doveadm(self, *args: str) -> None:
        """Run doveadm against our config (never the system's), output to a file."""
        with (self.base_dir / "doveadm.out").open("ab") as out:
            result = subprocess.run(
                [DOVEADM, "-c", str(self.config_path), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=30,
            )
        if result.returncode != 0:
            tail = (self.base_dir / "doveadm.out").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"doveadm {' '.join(args)} failed ({result.returncode}):\n{tail}")

    def remove(self) -> None:
        """Stop the server and delete everything under base_dir."""
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as dead: it holds no sockets)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # Field 3 is the state; the command name in field 2 may contain spaces, so split after ')'.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is in process group ``pgid``."""
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_path.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        # After the command name: state, ppid, pgrp.
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _wait_group_dead(pgid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for every process in group ``pgid`` to exit."""
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def start_dovecot(base_dir: Path) -> DovecotServer:
    """Start a private Dovecot in ``base_dir`` on a free port (retrying if the port was taken)."""
    last_error: RuntimeError | None = None
    for _ in range(3):
        server = DovecotServer(base_dir)
        try:
            server.start()
        except RuntimeError as exc:
            # Not stop(): when another program took the port, it will not close.
            server._kill()
            if "Address already in use" in str(exc):
                last_error = exc
                continue
            raise
        return server
    raise last_error or RuntimeError("dovecot did not start")
