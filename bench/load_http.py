"""A small HTTP client for the load benchmark: one person's browser, cookies kept, nothing else.

The standard library only (``http.client``): the project has no HTTP client dependency, and a
browser here needs little: keep the cookies the portal sets, send forms as
``application/x-www-form-urlencoded`` UTF-8, never follow redirects (the benchmark wants to see
the 303 itself), and give up on a socket after a hard timeout so one stuck request cannot hold
the run. Each request opens its own connection, as gunicorn's sync workers close every one
after answering.
"""

from __future__ import annotations

import html
import http.client
import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
_SELECT = r'<select[^>]*name="{name}"[^>]*>(.*?)</select>'
_OPTION = re.compile(r'<option([^>]*)value="([^"]*)"([^>]*)>')


@dataclass(frozen=True)
class Reply:
    status: int
    location: str | None
    body: str
    seconds: float  # from opening the connection to the last byte of the body


class Browser:
    """One client of the portal: its own cookies, one request at a time."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.cookies: dict[str, str] = {}

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, form: dict[str, str]) -> Reply:
        return self.request("POST", path, form)

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Reply:
        """Send one request; raises ``OSError`` (``TimeoutError`` included) when the socket
        fails or stays silent for ``timeout`` seconds."""
        headers = {"Host": f"{self.host}:{self.port}", "Connection": "close"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form, encoding="utf-8").encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            for value in response.msg.get_all("Set-Cookie") or ():
                self._keep_cookie(value)
            location = response.getheader("Location")
            status = response.status
        finally:
            connection.close()
        seconds = time.perf_counter() - started
        return Reply(status, location, data.decode("utf-8", "replace"), seconds)

    def _keep_cookie(self, header: str) -> None:
        """Enough of RFC 6265 for one host: remember ``name=value``, forget an expired one."""
        pair, _, attributes = header.partition(";")
        name, _, value = pair.strip().partition("=")
        lowered = attributes.lower().replace(" ", "")
        if "max-age=0" in lowered or "expires=thu,01jan1970" in lowered:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value


def csrf_token(page: str) -> str | None:
    """The first CSRF token of a page (Flask-WTF gives every form of a session the same one)."""
    found = _CSRF.search(page)
    return html.unescape(found[1] or found[2]) if found else None


def select_options(page: str, name: str) -> tuple[list[str], str | None]:
    """The option values of the ``<select name=...>`` on a page, and the selected one."""
    found = re.search(_SELECT.format(name=re.escape(name)), page, re.DOTALL)
    if not found:
        return [], None
    values: list[str] = []
    selected = None
    for before, value, after in _OPTION.findall(found[1]):
        values.append(html.unescape(value))
        if "selected" in before or "selected" in after:
            selected = html.unescape(value)
    return values, selected
