"""Processes for the mail-bridge benchmark: the ``flask`` environment, timing, peak memory.

``measure(cmd, env, log)`` runs one command to completion and returns its wall time and its
own peak RSS: ``VmHWM`` from ``/proc/PID/status``, read every 2 ms while it runs (the high-water
mark of the program's own address space). Neither ``getrusage(RUSAGE_CHILDREN)`` (the maximum
over every child reaped so far) nor even ``wait4``'s per-child ``ru_maxrss`` will do: Linux
carries the parent's high-water mark through fork and exec into the child's ``ru_maxrss``, so
every child of a 90 MB benchmark process would "peak" at 90 MB at least.

Every process started here is in its own session and is recorded in a :class:`Reaper`, which
kills the whole group when the benchmark ends, however it ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
FLASK = VENV_BIN / "flask"


@dataclass
class Measured:
    returncode: int
    seconds: float
    max_rss_kb: int
    log: Path
    # The peak of its RSS plus that of every process it started (the bridge's parsing
    # workers), summed at each look; pages the processes share are counted in each.
    tree_rss_kb: int = 0

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Reaper:
    """Remembers started processes; :meth:`kill_all` ends each one's group (idempotent)."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(
        self, cmd: Sequence[str], env: dict[str, str], log: Path, stdout: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``cmd`` from the repository root in a new session; stderr goes to ``log``."""
        with log.open("ab") as err, (stdout or log).open("ab") as out:
            proc = subprocess.Popen(
                list(cmd),
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.processes.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.processes:
            kill(proc)
        self.processes.clear()


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal the process group of ``proc`` and reap it; harmless when it already exited."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
        proc.wait(timeout=10)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            proc.wait(timeout=10)


def vm_hwm_kb(pid: int, field: bytes = b"VmHWM:") -> int | None:
    """The peak (or with ``field=b"VmRSS:"`` the current) resident set size of a running
    process in KB, or None once it has exited."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None  # a zombie: no memory left to report


def _children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with (
                contextlib.suppress(OSError, ValueError),
                open(f"/proc/{pid}/task/{task}/children") as children,
            ):
                found += [int(child) for child in children.read().split()]
    return found


def _descendants(pid: int) -> list[int]:
    found, todo = [], _children(pid)
    while todo:
        child = todo.pop()
        found.append(child)
        todo += _children(child)
    return found


def reap(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, int, int]:
    """Wait for ``proc`` (at most ``timeout`` s, then kill it); returns (exit status, peak RSS
    KB, peak RSS KB of it and its descendants).

    Polls every 2 ms, so the wall time measured around it is exact to that; the peak RSS is
    the last ``VmHWM`` seen (a high-water mark only grows). Every 50 ms the current RSS of
    the process and all its descendants (the bridge's workers) is summed; the largest sum is
    the third value.
    """
    deadline = time.monotonic() + timeout
    peak = tree_peak = 0
    polls = 0
    while True:
        peak = max(peak, vm_hwm_kb(proc.pid) or 0)
        if polls % 25 == 0:
            tree = [proc.pid, *_descendants(proc.pid)]
            tree_peak = max(tree_peak, sum(vm_hwm_kb(pid, b"VmRSS:") or 0 for pid in tree))
        polls += 1
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            # ru_maxrss only when the process ended before the first look (it overstates).
            own = peak or int(usage.ru_maxrss)
            return proc.returncode, own, max(tree_peak, own)
        if time.monotonic() > deadline:
            kill(proc)
            raise TimeoutError(f"{proc.args!r} did not finish within {timeout:.0f} s")
        time.sleep(0.002)


def measure(
    reaper: Reaper,
    cmd: Sequence[str],
    env: dict[str, str],
    log: Path,
    *,
    stdout: Path | None = None,
    timeout: float = 600,
) -> Measured:
    """Run ``cmd`` to completion: exit status, wall time (start to exit) and its peak RSS."""
    started = time.perf_counter()
    proc = reaper.start(cmd, env, log, stdout)
    returncode, rss, tree_rss = reap(proc, timeout)
    return Measured(returncode, time.perf_counter() - started, rss, log, tree_rss)


def flask_cmd(*args: str) -> list[str]:
    return [str(FLASK), "--app", "wsgi", *args]


def bridge_env(work: Path, imap_url: str, **extra: str) -> dict[str, str]:
    """``PORTAL_*`` settings for a bridge writing only under ``work`` (SQLite, blobs, outbox)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PORTAL_DATABASE_URL": f"sqlite:///{work / 'bridge.sqlite3'}",
        "PORTAL_SECRET_KEY": "bench-secret-key-not-for-production",
        "PORTAL_BLOB_DIR": str(work / "blobs"),
        "PORTAL_OUTBOX_DIR": str(work / "outbox"),
        "PORTAL_MAIL_SERVER": "",
        "PORTAL_IMAP_CA_URL": imap_url,
        # Required by the bridge; the corpus's own MX (bench/corpus.py MX_HOSTS) is ours.
        "PORTAL_MAIL_AUTHSERV_ID": "mx1.example.org",
    }
    env.update(extra)
    return env


def peak_rss_mb(kb: int) -> float:
    return kb / 1024
