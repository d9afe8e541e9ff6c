"""gunicorn with the repository's configuration (deploy/gunicorn.conf.py), run for real.

Issue: "PostgreSQL as a first-class database, and a deployment an operations team can run":
gunicorn is the production server, its configuration in the repository, workers from the
core count; production refuses to start when misconfigured; the access log keeps no secret.
"""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.accesslog import loggable_path
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "gunicorn.conf.py"
GUNICORN = Path(sys.executable).parent / "gunicorn"
FLASK = Path(sys.executable).parent / "flask"
TOKEN = "eyJhIjoiYXBwZWFsIn0.ZmFrZQ.c2lnbmF0dXJlLXNlY3JldA"


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        "PORTAL_ENV": "production",
        "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "PORTAL_SECRET_KEY": "a-long-random-secret-key-for-the-gunicorn-test-0123456789",
        "PORTAL_AUDIT_KEY": "an-audit-key-kept-outside-the-database",
        "PORTAL_RATELIMIT_STORAGE_URI": "database://",
        "PORTAL_BLOB_DIR": str(tmp_path / "blobs"),
        "PORTAL_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    env.update(extra)
    return env


def read_config(**environ: str) -> dict[str, object]:
    saved = dict(os.environ)
    try:
        for name in ("PORTAL_BIND", "PORTAL_WEB_WORKERS"):
            os.environ.pop(name, None)
        os.environ.update(environ)
        return runpy.run_path(str(CONFIG))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_workers_come_from_the_core_count() -> None:
    config = read_config()
    assert config["workers"] == 2 * len(os.sched_getaffinity(0)) + 1
    assert config["bind"] == ["127.0.0.1:8000"]
    assert config["wsgi_app"] == "wsgi:app"


def test_workers_and_addresses_can_be_set() -> None:
    config = read_config(PORTAL_WEB_WORKERS="3", PORTAL_BIND="127.0.0.1:9000, unix:/run/p.sock")
    assert config["workers"] == 3
    assert config["bind"] == ["127.0.0.1:9000", "unix:/run/p.sock"]


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/healthz", "/healthz"),
        (f"/appeals/confirm/{TOKEN}", "/appeals/confirm/…"),
        (f"/portal/appeals/confirm/{TOKEN}/", "/portal/appeals/confirm/…/"),
        ("/staff/?q=jos%C3%A9@example.org", "/staff/"),
        ("/staff/\nforged 200 line", "/staff/\\x0aforged 200 line"),
    ],
)
def test_the_access_log_path_keeps_no_secret(path: str, logged: str) -> None:
    assert loggable_path(path) == logged


class Gunicorn:
    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log = tmp_path / "gunicorn.log"
        env = {**env, "PORTAL_BIND": f"127.0.0.1:{self.port}", "PORTAL_WEB_WORKERS": "2"}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(GUNICORN), "--config", str(CONFIG)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, headers: dict[str, str] | None = None) -> int:
        request = urllib.request.Request(self.url(path), headers=headers or {})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def wait_until_serving(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited: {self.output()}")
            try:
                self.get("/healthz")
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"gunicorn did not answer: {self.output()}")

    def output(self) -> str:
        return self.log.read_text("utf-8", "replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            raise


@pytest.fixture
def migrated(tmp_path: Path) -> dict[str, str]:
    env = production_env(tmp_path)
    result = subprocess.run(
        [str(FLASK), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return env


@pytest.fixture
def gunicorn(tmp_path: Path, migrated: dict[str, str]) -> Iterator[Gunicorn]:
    server = Gunicorn(tmp_path, migrated)
    try:
        server.wait_until_serving()
        yield server
    finally:
        server.stop()


def test_production_serves_and_logs_nothing_private(gunicorn: Gunicorn) -> None:
    assert gunicorn.get("/healthz") == 200
    assert gunicorn.get("/requests/new") == 200
    gunicorn.get(f"/appeals/confirm/{TOKEN}?utm=secret-query")
    gunicorn.get("/staff/?q=jos%C3%A9%40example.org", headers={"User-Agent": "agent-007"})
    # A client claiming HTTPS when no proxy is trusted: neither gunicorn nor the app believes it.
    gunicorn.get("/healthz", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "6.6.6.6"})
    assert gunicorn.stop() == 0  # SIGTERM: a clean, graceful stop
    log = gunicorn.output()
    assert '"GET /healthz" 200' in log
    assert '"GET /appeals/confirm/…"' in log
    for private in (TOKEN, "secret-query", "example.org", "jos", "agent-007", "127.0.0.1 -"):
        assert private not in log
    assert "6.6.6.6" not in log


def test_production_refuses_to_start_misconfigured(
    tmp_path: Path, migrated: dict[str, str]
) -> None:
    env = {**migrated, "PORTAL_RATELIMIT_STORAGE_URI": "memory://"}
    env.pop("PORTAL_AUDIT_KEY")
    server = Gunicorn(tmp_path, env)
    try:
        status = server.process.wait(timeout=60)
    finally:
        server.stop()
    assert status != 0
    log = server.output()
    assert "PORTAL_AUDIT_KEY must be set" in log
    assert "PORTAL_RATELIMIT_STORAGE_URI must name a shared store" in log
    assert migrated["PORTAL_SECRET_KEY"] not in log
