"""Headless Debian Chromium driven by Playwright, and a live WSGI server for it to visit.

Playwright's own browser downloads are never used: ``playwright install`` is not run anywhere.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from werkzeug.serving import BaseWSGIServer, make_server

from tests.servers import HOST, free_port, wait_port_closed

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from flask import Flask
    from playwright.sync_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_installed() -> bool:
    """Whether the distribution's Chromium exists (CI installs it with apt)."""
    return os.access(CHROMIUM, os.X_OK)


def launch_chromium(playwright: Playwright) -> Browser:
    """Launch the system Chromium headless with flags that keep it off the network."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        timeout=30_000,
    )


class LiveServer:
    """Serve a WSGI app (a Flask app) on 127.0.0.1 in a background thread, for the browser."""

    host: str
    port: int
    url: str

    def __init__(self, app: WSGIApplication, port: int | None = None) -> None:
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.url = f"http://{self.host}:{self.port}"
        self._server: BaseWSGIServer = make_server(self.host, self.port, app, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"live-server-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port. Safe to repeat."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()
        wait_port_closed(self.host, self.port)


class DeliveryWorker:
    """The real delivery loop (``portal.services.delivery.run``, what `outbox run` runs) in a
    background thread, polling often so that browser tests need not wait long."""

    POLL_SECONDS = 0.2

    def __init__(self, app: Flask) -> None:
        from portal.config import get_settings
        from portal.extensions import db
        from portal.services import delivery

        self._stop = threading.Event()

        def work() -> None:
            with app.app_context():
                settings = replace(get_settings(), outbox_poll_seconds=self.POLL_SECONDS)
                delivery.run(db.session, settings, str(app.secret_key), self._stop)
                db.session.remove()

        self._thread = threading.Thread(target=work, name="delivery-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
