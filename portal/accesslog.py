"""gunicorn's access log, without what must never be in a log line.

A request line carries more than its route: the appeal confirmation link has its single-use
token in the path (``/appeals/confirm/<token>``: whoever reads the log within 48 hours could
confirm someone else's appeal), and query strings carry what staff searched for (names,
addresses). Client addresses, user agents, referrers and cookies identify people. So
:class:`PrivateAccessLogger` offers gunicorn's format only the method, the route with its
secrets replaced, the status, the size and the time taken; every other atom, request header
and environ value logs as ``-`` whatever ``access_log_format`` asks for.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

# Path segments that are secrets, matched anywhere in the path (a SCRIPT_NAME prefix too).
_SECRET_SEGMENTS = [re.compile(r"(/appeals/confirm/)[^/]+")]
REDACTED = "…"

# Format of deploy/gunicorn.conf.py: time, "METHOD /route", status, bytes, milliseconds.
ACCESS_LOG_FORMAT = '%(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'

_KEPT = ("t", "s", "m", "H", "b", "B", "T", "D", "M", "L", "p")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def loggable_path(path: str) -> str:
    """The path without its query, every secret segment replaced, and control characters
    (a decoded ``%0A`` would start a forged log line) written as escapes."""
    path = path.split("?", 1)[0]
    for pattern in _SECRET_SEGMENTS:
        path = pattern.sub(lambda m: m[1] + REDACTED, path)
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", path)


class PrivateAccessLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger with the access log's atoms reduced to those in :data:`_KEPT`."""

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any
    ) -> dict[str, Any]:
        every = super().atoms(resp, req, environ, request_time)
        atoms = {name: every[name] for name in _KEPT if name in every}
        path = loggable_path(str(environ.get("PATH_INFO") or ""))
        atoms["U"] = path
        atoms["r"] = f"{environ.get('REQUEST_METHOD')} {path} {environ.get('SERVER_PROTOCOL')}"
        return atoms
