"""The load benchmark of issue 10 (bench/bench_load.py) still runs end to end.

A few seconds of load with a handful of clients: enough to see that its forms are still
valid, that it signs staff in, reads the export, the audit check and the mail, and that it
takes down everything it started. Nothing here asserts on speed, nor on the portal keeping
its promises under load: that is what the benchmark itself reports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import bench_load

pytestmark = [pytest.mark.bench, pytest.mark.smtp]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_load_benchmark_runs_and_cleans_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "load.json"
    argv = ["--duration", "3", "--workers", "1", "--filers", "3", "--staff", "1"]
    argv += ["--non-ascii-share", "0.3", "--output", str(output)]

    assert bench_load.main(argv) == 0

    report = json.loads(output.read_text())
    printed = capsys.readouterr().out
    assert "filings/s" in printed
    assert "audit verify" in printed
    assert report["staff_signed_in"] == 1
    filings = report["filings"]
    assert filings["accepted_303"] >= 1
    # Anything but a 303 or a server error means the benchmark's own forms went stale (400),
    # or the rate limit was not raised for the load (429).
    for kind in ("filings", "staff_actions"):
        for status in report[kind]["statuses"]:
            assert status == "303" or status.startswith("5"), (kind, report[kind]["statuses"])
    assert report["latency_ms"]["file"]["n"] == filings["posted"] - report["filings"][
        "statuses"
    ].get("no answer", 0)
    assert report["export"]["status"] == 0
    assert report["export"]["cases"] >= filings["accepted_303"] - report["export"]["lost"]
    assert isinstance(report["audit"]["intact"], bool)
    assert report["mail"]["expected"] == filings["accepted_303"]
    assert (
        report["mail"]["acknowledged_filings"] + report["mail"]["missing"]
        == (filings["accepted_303"])
    )
    # Everything it started is gone: gunicorn (and the outbox worker) and the temp dir.
    assert report["server_pids"]
    assert not [pid for pid in report["server_pids"] if _alive(pid)]
    assert not Path(report["temp_dir"]).exists()
