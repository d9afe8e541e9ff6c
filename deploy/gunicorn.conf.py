"""gunicorn's configuration for the portal: ``make serve`` and deploy/portal-web.service.

    .venv/bin/gunicorn --config deploy/gunicorn.conf.py

Run it from the repository root (the systemd unit sets WorkingDirectory=). It reads the same
environment as the app (and ``.env`` in the working directory), plus:

- ``PORTAL_BIND``: where to listen, ``127.0.0.1:8000`` by default; several addresses comma
  separated; ``unix:/run/portal/web.sock`` for a socket the reverse proxy shares.
- ``PORTAL_WEB_WORKERS``: worker processes; by default (2 x cores) + 1, the count gunicorn's
  documentation starts from, cores being the CPUs this process may run on.

Forwarded headers: the app believes ``X-Forwarded-For`` and ``X-Forwarded-Proto`` from exactly
``PORTAL_TRUSTED_PROXIES`` hops (Werkzeug's ProxyFix), and nothing when it is 0. gunicorn is
told to believe none of them itself, so that one setting decides: with its defaults it would
also take the scheme from any local peer, and from any peer over a UNIX socket.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv

load_dotenv(Path.cwd() / ".env")  # as the app does, so `make serve` sees the same settings


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # CPUs this process may use (cgroups, taskset)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


wsgi_app = "wsgi:app"
bind = [
    address.strip()
    for address in os.environ.get("PORTAL_BIND", "127.0.0.1:8000").split(",")
    if address.strip()
]
workers = int(os.environ.get("PORTAL_WEB_WORKERS") or 0) or 2 * _cores() + 1
# Sync workers: one request at a time each, behind a reverse proxy that buffers slow clients
# (nginx does by default), so a slow upload never holds a worker.
worker_class = "sync"
# A request taking longer than this is killed and logged: nothing of ours should take 60 s.
timeout = 60
# On SIGTERM (systemd's stop) a worker finishes the request in hand, for at most this long.
graceful_timeout = 30
keepalive = 5
# A worker is replaced after this many requests (with jitter, so not all at once).
max_requests = 2000
max_requests_jitter = 200
# The heartbeat file in memory, not on a disk that may stall (Docker and ProtectSystem).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
proc_name = "portal-web"
# gunicorn 25.1+ opens a control socket under $HOME or $XDG_RUNTIME_DIR; systemd's reload
# (SIGHUP) and stop (SIGTERM) are all we use, and ProtectSystem=strict leaves $HOME read-only.
control_socket_disable = True

# One authority for forwarded headers: the app's PORTAL_TRUSTED_PROXIES (see above).
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
forwarder_headers = ""

# Logs to standard output and error (the journal under systemd). The access log holds no
# client address, query string, referrer, user agent or cookie, and no appeal link token.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("PORTAL_LOG_LEVEL", "info").lower()
logger_class = "portal.accesslog.PrivateAccessLogger"
access_log_format = '%(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
