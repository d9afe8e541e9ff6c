"""The systemd units in deploy/: valid for systemd, hardened, and running what they say.

Issue: "PostgreSQL as a first-class database, and a deployment an operations team can run":
"systemd units for the web app, the mail bridge and the outbox worker under deploy/, checked
with systemd-analyze verify in a test where it is available".

``systemd-analyze verify`` checks that every command a unit runs exists, so the units are
verified as installed: a copy with the install paths (/opt/portal, /etc/portal, /var/lib/portal)
pointing at this checkout and a temporary directory. It exits 0 even for an unknown or
misspelt setting, which it only prints: the test wants no output at all.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.test_gunicorn import production_env

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = {
    "portal-web.service": "gunicorn --config deploy/gunicorn.conf.py",
    "portal-outbox.service": "flask --app wsgi outbox run",
    "portal-mailbridge.service": "flask --app wsgi mailbridge run",
}
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
    "ReadWritePaths": "/var/lib/portal /opt/portal/instance",
}


def settings(unit: str) -> dict[str, str]:
    """The unit's ``Key=value`` lines (the last one wins, as in systemd for these keys)."""
    found = {}
    for line in (DEPLOY / unit).read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_each_unit_runs_its_command_as_the_portal_user_hardened(unit: str) -> None:
    found = settings(unit)
    assert found["ExecStart"].startswith("/opt/portal/.venv/bin/")
    assert found["ExecStart"].endswith(UNITS[unit])
    assert found["User"] == "portal"
    assert found["Group"] == "portal"
    assert found["WorkingDirectory"] == "/opt/portal"
    assert found["EnvironmentFile"] == "/etc/portal/portal.env"
    assert found["Restart"] == "on-failure"
    assert found["KillSignal"] == "SIGTERM"
    for key, value in HARDENING.items():
        assert found[key] == value, key


def installed_copy(tmp_path: Path) -> Path:
    """The units as they would be installed, with this checkout in place of /opt/portal."""
    data = tmp_path / "var-lib-portal"
    data.mkdir()
    (ROOT / "instance").mkdir(exist_ok=True)
    environment = tmp_path / "portal.env"
    environment.write_text("PORTAL_ENV=production\n")
    copies = tmp_path / "units"
    copies.mkdir()
    for unit in UNITS:
        text = (DEPLOY / unit).read_text()
        text = text.replace("/etc/portal/portal.env", str(environment))
        text = text.replace("/var/lib/portal", str(data)).replace("/opt/portal", str(ROOT))
        (copies / unit).write_text(text)
    return copies


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path: Path) -> None:
    copies = installed_copy(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(copies / unit) for unit in UNITS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_verify_would_catch_a_misspelt_setting(tmp_path: Path) -> None:
    """The check above means something: a typo in a unit is reported."""
    copies = installed_copy(tmp_path)
    unit = copies / "portal-outbox.service"
    unit.write_text(unit.read_text().replace("KillMode=mixed", "KilMode=mixed"))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "KilMode" in result.stdout + result.stderr


def test_the_outbox_unit_command_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """What systemd does to stop it: SIGTERM, then (after TimeoutStopSec) SIGKILL."""
    argv = shlex.split(settings("portal-outbox.service")["ExecStart"])
    argv[0] = argv[0].replace("/opt/portal", str(ROOT))
    env = production_env(tmp_path)
    migrate = subprocess.run(
        [str(Path(argv[0]).parent / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    log = tmp_path / "outbox.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while "delivering to" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
