"""Pytest fixtures for the real test servers; load with ``pytest_plugins = ["tests.servers.fixtures"]``.

Fixtures:
    dovecot (session)      a private Dovecot IMAP server
    imap_account           a fresh user on it (ImapAccount)
    smtp_server (session)  a real aiosmtpd SMTP server
    smtp                   the same server, emptied and accepting mail again
    browser (session)      headless Debian Chromium through Playwright
    page                   a fresh browser context and page
    live_server            the ``app`` fixture served over HTTP for the browser
    postgresql (session)   a private PostgreSQL cluster (tests/conftest.py gives each test
                           its own database on it)
"""

from __future__ import annotations

import atexit
import itertools
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import imapclient
import pytest

from tests.servers.browser import (
    DeliveryWorker,
    LiveServer,
    chromium_installed,
    launch_chromium,
)
from tests.servers.dovecot import DovecotServer, dovecot_installed, start_dovecot
from tests.servers.postgres import (
    PostgresServer,
    postgres_installed,
    scratch_root,
    start_postgres,
)
from tests.servers.smtp import SmtpServer

if TYPE_CHECKING:
    from flask import Flask
    from playwright.sync_api import Browser, Page

_MARKERS = {
    "imap": ("dovecot", "imap_account"),
    "smtp": ("smtp_server", "smtp", "smtp_ascii_server", "smtp_ascii"),
    "browser": ("browser", "page"),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the servers they use, so ``-m "not browser"`` works without bookkeeping.

    The markers themselves are registered in pyproject.toml ([tool.pytest.ini_options]).
    """
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in _MARKERS.items():
            if names.intersection(fixtures):
                item.add_marker(marker)


def _require(installed: bool, what: str) -> None:
    """Skip when a server binary is missing locally; on CI a missing binary is a failure."""
    if installed:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is not installed on CI: the Makefile must install it", pytrace=False)
    pytest.skip(f"{what} not installed: run make test")


# -- IMAP ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dovecot(request: pytest.FixtureRequest) -> Iterator[DovecotServer]:
    """One private Dovecot for the whole session, always stopped afterwards.

    Its directory is made with ``tempfile`` in /tmp rather than ``tmp_path_factory``: pytest's
    temp root is mode 0700, which Dovecot's mail processes (user ``mail``) cannot traverse.
    The directory is kept when tests failed, for its dovecot.log.
    """
    _require(dovecot_installed(), "dovecot")
    base_dir = Path(tempfile.mkdtemp(prefix="pytest-dovecot-"))
    server = start_dovecot(base_dir)
    # Safety net: never leave a daemon behind, even if pytest dies before teardown.
    atexit.register(server.stop)
    try:
        yield server
    finally:
        server.stop()
        atexit.unregister(server.stop)
        if not request.session.testsfailed:
            shutil.rmtree(base_dir, ignore_errors=True)


@dataclass
class ImapAccount:
    """A user on the test Dovecot, with shortcuts that fill in its credentials."""

    server: DovecotServer
    user: str
    password: str

    def url(self, folder: str = "INBOX") -> str:
        """``imap://user:pass@127.0.0.1:port/folder``, percent-encoded."""
        return self.server.url(self.user, self.password, folder)

    def append(self, raw: bytes, folder: str = "INBOX") -> int:
        """Deliver a message by IMAP APPEND; returns its UID."""
        return self.server.append(self.user, self.password, raw, folder)

    def client(self) -> imapclient.IMAPClient:
        """A logged-in IMAPClient (use it as a context manager)."""
        return self.server.client(self.user, self.password)

    def recreate_folder(self, folder: str = "INBOX") -> None:
        """Give the folder a new UIDVALIDITY, keeping its messages."""
        self.server.recreate_folder(self.user, self.password, folder)

    def uidvalidity(self, folder: str = "INBOX") -> int:
        """The folder's current UIDVALIDITY."""
        return self.server.uidvalidity(self.user, self.password, folder)


_user_numbers = itertools.count(1)


@pytest.fixture
def imap_account(dovecot: DovecotServer) -> ImapAccount:
    """A brand-new mailbox user, so tests never see each other's mail.

    The password contains characters that must be percent-encoded in URLs (``@ / % +`` and a
    space), so code that builds or parses IMAP URLs is exercised for real.
    """
    user = f"user{next(_user_numbers)}-{secrets.token_hex(3)}"
    password = f"pw {secrets.token_hex(4)}@/%+"
    dovecot.add_user(user, password)
    return ImapAccount(server=dovecot, user=user, password=password)


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgresql(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """One private PostgreSQL cluster for the whole session, always stopped afterwards.

    In a ``tempfile`` directory of its own, like Dovecot's (as root, the cluster belongs to
    the ``postgres`` user, who cannot traverse pytest's 0700 temp root), in memory where
    there is room (see ``scratch_root``). When tests failed its postgres.log is kept, not
    its data (in memory, that would hold on to the RAM until the next reboot).
    """
    _require(postgres_installed(), "postgresql")
    base_dir = Path(tempfile.mkdtemp(prefix="pytest-postgres-", dir=scratch_root()))
    server = start_postgres(base_dir)
    # Safety net: never leave a server behind, even if pytest dies before teardown.
    atexit.register(server.stop)
    try:
        yield server
    finally:
        server.stop()
        atexit.unregister(server.stop)
        shutil.rmtree(server.data_dir, ignore_errors=True)
        if not request.session.testsfailed:
            shutil.rmtree(base_dir, ignore_errors=True)


# -- SMTP ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    """One real SMTP server for the session."""
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def smtp_ascii_server() -> Iterator[SmtpServer]:
    """A real SMTP server that does not offer SMTPUTF8, as many still do not."""
    server = SmtpServer(smtputf8=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_ascii(smtp_ascii_server: SmtpServer) -> SmtpServer:
    smtp_ascii_server.start()
    smtp_ascii_server.accept()
    smtp_ascii_server.clear()
    return smtp_ascii_server


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> SmtpServer:
    """The session SMTP server, running, empty and accepting, whatever the last test did."""
    smtp_server.start()
    smtp_server.accept()
    smtp_server.clear()
    return smtp_server


# -- Browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, launched once per session."""
    _require(chromium_installed(), "chromium")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh context (no cookies from other tests) and page, closed afterwards."""
    context = browser.new_context()
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The test ``app`` served over real HTTP on 127.0.0.1, for the browser to visit, with
    the delivery worker (`outbox run`) beside it, as `make run` starts them."""
    server = LiveServer(app)
    worker = DeliveryWorker(app) if "portal.settings" in app.extensions else None
    try:
        yield server
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
