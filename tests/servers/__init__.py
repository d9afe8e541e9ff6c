"""Real servers for the test suite: Dovecot IMAP, aiosmtpd SMTP and headless Chromium.

Nothing here is a mock. ``tests.servers.fixtures`` turns these helpers into pytest fixtures.
"""

from __future__ import annotations

import socket
import time

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """Ask the kernel for a free TCP port, so parallel runs never collide on a fixed one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port right now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port_closed(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until nothing listens on host:port, so a stop is really a stop."""
    deadline = time.monotonic() + timeout
    while port_open(host, port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host}:{port} still accepts connections after {timeout}s")
        time.sleep(0.05)
