"""A worker process's lifeline to the bridge: when the bridge is gone, the worker goes too.

The bridge's workers are forked by a fork server, not by the bridge, and each one holds the
fork server's "alive" pipe open; so when the bridge is killed (SIGKILL, the OOM killer), the
fork server waits for its workers, the workers wait for work that never comes, and every kill
left three or four processes behind (issue 10). Each worker therefore watches the bridge
itself from a daemon thread: on Linux through a pidfd, which becomes readable the moment the
process exits, whatever killed it; elsewhere by polling. Once the workers are gone the fork
server sees its pipe close and exits, and so does multiprocessing's resource tracker.

A parent-death signal (``PR_SET_PDEATHSIG``) would not do on its own here: it fires when the
worker's parent dies, and that parent is the fork server, which outlives the bridge.
"""

from __future__ import annotations

import os
import select
import threading
import time

POLL_SECONDS = 1.0  # where there is no pidfd: how often a worker checks that the bridge lives
EXIT_STATUS = 70  # EX_SOFTWARE: not a normal end, but nothing a worker holds needs saving


def watch(bridge_pid: int) -> None:
    """Exit this process as soon as process ``bridge_pid`` has exited (a pool initializer).

    A worker holds nothing that needs saving (a batch commits in the bridge), so it leaves at
    once, without cleanup: ``os._exit``.
    """
    pidfd_open = getattr(os, "pidfd_open", None)
    fd: int | None = None
    if pidfd_open is not None:
        try:
            fd = pidfd_open(bridge_pid)
        except ProcessLookupError:  # died while this worker was being started
            os._exit(EXIT_STATUS)
        except OSError:  # a kernel without pidfds (Linux < 5.3): poll instead
            fd = None
    threading.Thread(
        target=_wait_for_exit, args=(bridge_pid, fd), name="lifeline", daemon=True
    ).start()


def _wait_for_exit(pid: int, fd: int | None) -> None:
    if fd is not None:
        select.select([fd], [], [])  # a pidfd turns readable when its process exits
    else:
        while _alive(pid):
            time.sleep(POLL_SECONDS)
    os._exit(EXIT_STATUS)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists (a reused PID we may not signal): keep waiting
        return True
    return True
