"""Load benchmark of issue 10: people filing and staff working at once, under gunicorn.

The portal runs as in production, on loopback only: a fresh SQLite database made by
``flask --app wsgi db upgrade``, staff accounts made by ``staff create --password-stdin``,
gunicorn with ``--workers`` processes, a real SMTP server (aiosmtpd) as the mail relay, and the
outbox worker (``flask --app wsgi outbox run``) when the portal has one; until then the web
request delivers its acknowledgement itself. ``--filers`` people file valid requests (every
action, several scripts, some addresses outside ASCII) and ``--staff`` people open the inbox,
open a case, and add a note or change its status, all through the real forms with their CSRF
tokens, in closed loops for ``--duration`` seconds. Then it checks what the portal promised:

* filings per second, and POST latency (p50/p95/p99) for filings and staff actions apart;
* every answer other than the expected one (5xx above all), and requests left unanswered;
* lost filings: a 303 whose marker is missing from ``cases export --format jsonl``, and
  duplicates (one marker in two cases);
* ``audit verify``: the hash chain intact, or how many rows break it;
* acknowledgements received by the SMTP server against those expected (one per 303).

It prints a short table and writes everything as JSON under ``bench/results/``::

    .venv/bin/python -m bench.bench_load [--duration 60] [--workers 4] [--filers 40] [--staff 10]

Bounded: every request has a socket timeout, every command a timeout, the whole run an alarm;
everything listens on 127.0.0.1, and only the processes the benchmark started are stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from types import FrameType
from typing import Any

from bench.load_clients import Run, Sample, filer, sign_in, staff_member
from bench.load_portal import ROOT, PortalUnderTest, ReceivedMail, machine_cpu_seconds

RESULTS = ROOT / "bench" / "results"
STAFF_ACTIONS = ("note", "status")
MAIL_IDLE_SECONDS = 10.0  # after the load, wait this long for one more mail before counting
MAIL_MAX_WAIT = 120.0


class RunTimeout(Exception):
    """The whole run took longer than ``--run-timeout``."""


def run_benchmark(
    *,
    duration: float,
    workers: int,
    filers: int,
    staff: int,
    request_timeout: float = 30.0,
    non_ascii_share: float = 0.1,
    seed: int = 1,
    keep_dir: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Set the portal up, load it, check it, take it down again; return the report."""
    say = print if progress else (lambda *_: None)
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": {
            "duration": duration,
            "workers": workers,
            "filers": filers,
            "staff": staff,
            "request_timeout": request_timeout,
            "non_ascii_share": non_ascii_share,
            "seed": seed,
        },
        "machine": machine(),
    }
    portal = PortalUnderTest(workers=workers, keep_dir=keep_dir)
    phases = report["phases_seconds"] = {}
    clock = time.monotonic()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        phases[name] = round(now - clock, 2)
        clock = now

    try:
        say(f"setting up in {portal.dir} ...")
        report["temp_dir"] = str(portal.dir)
        accounts = portal.prepare(staff)
        report["outbox_worker"] = portal.outbox_worker
        portal.start()
        report["server_pids"] = portal.pids()
        run = Run(
            host="127.0.0.1",
            port=portal.port,
            marker_prefix=f"lb{secrets.token_hex(3)}",
            deadline=float("inf"),
            started=time.monotonic(),
            timeout=request_timeout,
            non_ascii_share=non_ascii_share,
            seed=seed,
        )
        browsers = [sign_in(run, account) for account in accounts]
        report["staff_signed_in"] = sum(b is not None for b in browsers)
        run.samples.clear()  # sign-in is set-up, not load
        phase("setup")

        report["machine"]["loadavg_at_start"] = os.getloadavg()
        say(f"load: {filers} filers, {staff} staff, {workers} workers, {duration:.0f} s ...")
        cpu_before = (time.process_time(), portal.cpu_seconds(), machine_cpu_seconds())
        elapsed = _load(run, browsers, filers, duration, request_timeout)
        report["cpu"] = _cpu_use(cpu_before, portal, elapsed, filings=_accepted(run))
        report["machine"]["loadavg_at_end"] = os.getloadavg()
        report["elapsed"] = round(elapsed, 2)
        report["servers_alive_after_load"] = portal.running()
        phase("load")

        say("waiting for the mail ...")
        mail_wait = _wait_for_mail(portal, expected=_accepted(run))
        portal.stop_servers()
        phase("mail")
        say("checking: cases export, audit verify ...")
        with ThreadPoolExecutor(max_workers=2) as pool:
            exporting = pool.submit(portal.flask, "cases", "export", "--format", "jsonl")
            verify = portal.flask("audit", "verify")
            export = exporting.result()
        report.update(
            analyse(
                run,
                elapsed,
                export.stdout,
                export.returncode,
                verify.returncode,
                verify.stdout + verify.stderr,
                portal.mail.snapshot(),
                mail_wait,
            )
        )
        report["server_log"] = _log_summary(portal.log_tail("gunicorn", chars=50_000_000))
        phase("checks")
    finally:
        portal.close()
    return report


def _load(run: Run, browsers: Sequence[Any], filers: int, duration: float, timeout: float) -> float:
    """Start every client at once and wait for all of them; the seconds it took."""
    threads = [
        threading.Thread(target=filer, args=(run, n), name=f"filer-{n}", daemon=True)
        for n in range(filers)
    ] + [
        threading.Thread(target=staff_member, args=(run, b, n), name=f"staff-{n}", daemon=True)
        for n, b in enumerate(browsers)
        if b is not None
    ]
    run.started = time.monotonic()
    run.deadline = run.started + duration
    for thread in threads:
        thread.start()
    # A client finishes the request it is in after the deadline; each of those has a hard
    # timeout, and a client makes at most two more before it notices the clock.
    join_by = run.deadline + 3 * timeout + 10
    for thread in threads:
        thread.join(timeout=max(0.0, join_by - time.monotonic()))
    run.stop.set()
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        raise RunTimeout(f"clients still running past their timeouts: {', '.join(stuck)}")
    return time.monotonic() - run.started


def _cpu_use(
    before: tuple[float, float, tuple[float, float]],
    portal: PortalUnderTest,
    elapsed: float,
    *,
    filings: int,
) -> dict[str, float | None]:
    """Cores used during the load, on average: by the portal's processes, by the clients
    (this process), and by everything else on the machine (other people's work).

    Filings per CPU-second the portal got says what a filing costs whoever else shares the
    machine: filings per second depend on the neighbours, this much less.
    """
    client = time.process_time() - before[0]
    server = portal.cpu_seconds() - before[1]
    busy, total = (now - then for now, then in zip(machine_cpu_seconds(), before[2], strict=True))
    cores = total / elapsed if elapsed else 0.0
    return {
        "portal_cores": round(server / elapsed, 2),
        "clients_cores": round(client / elapsed, 2),
        "others_cores": round(max(0.0, busy - server - client) / elapsed, 2),
        "idle_cores": round(max(0.0, total - busy) / elapsed, 2),
        "cores": round(cores, 2),
        "filings_per_portal_cpu_second": round(filings / server, 1) if server else None,
    }


def _accepted(run: Run) -> int:
    return sum(1 for f in run.filings if f.status == 303)


def _wait_for_mail(portal: PortalUnderTest, expected: int) -> dict[str, float]:
    """Wait until every expected mail came, or none came for a while; how long it took."""
    began = time.monotonic()
    last_count, last_change = portal.mail.count(), began
    while time.monotonic() - began < MAIL_MAX_WAIT:
        count = portal.mail.count()
        if count >= expected:
            break
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > MAIL_IDLE_SECONDS:
            break
        time.sleep(0.2)
    return {"waited_seconds": round(time.monotonic() - began, 2)}


# -- analysis ----------------------------------------------------------------------------------


def analyse(
    run: Run,
    elapsed: float,
    export_jsonl: str,
    export_status: int,
    verify_status: int,
    verify_output: str,
    mail: Sequence[ReceivedMail],
    mail_wait: dict[str, float],
) -> dict[str, Any]:
    samples = run.samples
    accepted = {f.marker for f in run.filings if f.status == 303}
    stored = _markers_per_case(export_jsonl, run.marker_prefix)
    acks = _acks_per_marker(mail, run.marker_prefix)
    ascii_of = {f.marker: f.ascii_address for f in run.filings}
    # A failed export proves nothing lost or kept: say so rather than count every filing.
    lost = sorted(accepted - set(stored)) if export_status == 0 else None
    staff_posts = [s for s in samples if s.kind in STAFF_ACTIONS]
    return {
        "filings": {
            "posted": len(run.filings),
            "accepted_303": len(accepted),
            "per_second": round(len(accepted) / elapsed, 2) if elapsed else 0.0,
            "statuses": _statuses(s for s in samples if s.kind == "file"),
            "by_action": dict(Counter(f.action for f in run.filings if f.status == 303)),
            "statuses_ascii_address": _filing_statuses(run, ascii_address=True),
            "statuses_non_ascii_address": _filing_statuses(run, ascii_address=False),
        },
        "staff_actions": {
            "posted": len(staff_posts),
            "accepted_303": sum(1 for s in staff_posts if s.status == 303),
            "per_second": round(sum(s.status == 303 for s in staff_posts) / elapsed, 2)
            if elapsed
            else 0.0,
            "statuses": _statuses(staff_posts),
        },
        "latency_ms": {
            "file": latency([s for s in samples if s.kind == "file"]),
            "staff_post": latency(staff_posts),
            "note": latency([s for s in samples if s.kind == "note"]),
            "status": latency([s for s in samples if s.kind == "status"]),
            "form_get": latency([s for s in samples if s.kind == "form"]),
            "inbox_get": latency([s for s in samples if s.kind == "inbox"]),
            "case_get": latency([s for s in samples if s.kind == "case"]),
        },
        "requests": len(samples),
        "http_5xx": sum(1 for s in samples if s.status is not None and s.status >= 500),
        "http_5xx_by_kind": dict(
            Counter(s.kind for s in samples if s.status is not None and s.status >= 500)
        ),
        "unexpected": _unexpected(samples),
        "no_answer": dict(Counter(f"{s.kind}: {s.error}" for s in samples if s.status is None)),
        "export": {
            "status": export_status,
            "cases": len(export_jsonl.splitlines()),
            "lost": len(lost) if lost is not None else None,
            "lost_markers": (lost or [])[:20],
            "duplicates": sum(1 for count in stored.values() if count > 1),
            "stored_without_303": len(set(stored) - accepted),
        },
        "audit": _audit(verify_status, verify_output),
        "mail": {
            "expected": len(accepted),
            "received": len(mail),
            "acknowledged_filings": len(accepted & set(acks)),
            "missing": len(accepted - set(acks)),
            "missing_ascii": sum(1 for m in accepted - set(acks) if ascii_of.get(m)),
            "missing_non_ascii": sum(1 for m in accepted - set(acks) if not ascii_of.get(m)),
            "duplicates": sum(1 for count in acks.values() if count > 1),
            "unmatched": len(mail) - sum(acks.values()),
            **mail_wait,
        },
    }


def latency(samples: Sequence[Sample]) -> dict[str, float | int | None]:
    """Percentiles in milliseconds of the requests that got an answer."""
    values = sorted(s.seconds * 1000 for s in samples if s.status is not None)
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    if len(values) == 1:
        return {"n": 1, "p50": values[0], "p95": values[0], "p99": values[0], "max": values[0]}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "n": len(values),
        "p50": round(cuts[49], 1),
        "p95": round(cuts[94], 1),
        "p99": round(cuts[98], 1),
        "max": round(values[-1], 1),
    }


def _statuses(samples: Iterable[Sample]) -> dict[str, int]:
    return dict(Counter(str(s.status) if s.status is not None else "no answer" for s in samples))


def _filing_statuses(run: Run, *, ascii_address: bool) -> dict[str, int]:
    return dict(
        Counter(
            str(f.status) if f.status is not None else "no answer"
            for f in run.filings
            if f.ascii_address is ascii_address
        )
    )


def _unexpected(samples: Sequence[Sample]) -> dict[str, int]:
    return dict(
        Counter(
            f"{s.kind} {s.status if s.status is not None else 'no answer'}"
            for s in samples
            if not s.expected
        )
    )


def _markers_per_case(jsonl: str, prefix: str) -> Counter[str]:
    """In how many exported cases each marker appears (it is in the requester's address)."""
    pattern = re.compile(rf"{prefix}x\d+x\d+")
    found: Counter[str] = Counter()
    for line in jsonl.splitlines():
        found.update(set(pattern.findall(line)))
    return found


def _acks_per_marker(mail: Sequence[ReceivedMail], prefix: str) -> Counter[str]:
    """How many mails each filing's requester got: the marker is in the recipient's address,
    or (if the address was encoded on the way) in the submission the acknowledgement quotes."""
    pattern = re.compile(rf"{prefix}x\d+x\d+")
    acks: Counter[str] = Counter()
    for item in mail:
        markers = set(pattern.findall(" ".join(item.rcpt_tos)))
        if not markers:
            message = BytesParser(policy=policy.default).parsebytes(item.data)
            text = " ".join(
                part.get_content()
                for part in message.walk()
                if part.get_content_maintype() == "text"
            )
            markers = set(pattern.findall(text))
        acks.update(markers)
    return acks


def _audit(status: int, output: str) -> dict[str, Any]:
    first = output.strip().splitlines()[0] if output.strip() else ""
    broken = None
    if status == 0 and "intact" in output:
        broken = 0
    elif found := re.search(r"event\(s\):\s*([\d,\s]+)", output):
        broken = len(re.findall(r"\d+", found[1]))
    return {"intact": status == 0, "broken_rows": broken, "status": status, "output": first[:300]}


def _log_summary(log: str) -> dict[str, int]:
    """What the server said about itself: tracebacks, and the SQLite lock errors among them."""
    return {
        "tracebacks": log.count("Traceback (most recent call last)"),
        "database_is_locked": log.count("database is locked"),
        "worker_timeouts": log.count("WORKER TIMEOUT"),
    }


# -- the machine -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
        "loadavg_before": os.getloadavg(),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


# -- output ------------------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    p = report["parameters"]
    lat = report["latency_ms"]
    f = report["filings"]
    m = report["mail"]
    e = report["export"]
    a = report["audit"]
    load = report["machine"]

    def ms(d: dict[str, Any]) -> str:
        if not d["n"]:
            return "-"
        return f"{d['p50']:.0f} / {d['p95']:.0f} / {d['p99']:.0f} ms (n={d['n']})"

    rows = [
        (
            "run",
            f"{p['duration']:.0f} s, {p['workers']} workers, {p['filers']} filers, "
            f"{p['staff']} staff ({report['staff_signed_in']} signed in), outbox worker: "
            f"{'yes' if report['outbox_worker'] else 'no'}",
        ),
        (
            "load average",
            "before {:.2f}, at start {:.2f}, at end {:.2f}".format(
                load["loadavg_before"][0], load["loadavg_at_start"][0], load["loadavg_at_end"][0]
            ),
        ),
        (
            "cores used (of {:.0f})".format(report["cpu"]["cores"]),
            "portal {portal_cores}, clients {clients_cores}, others {others_cores}, "
            "idle {idle_cores}".format(**report["cpu"]),
        ),
        ("filings/s", f"{f['per_second']:.1f} ({f['accepted_303']} accepted of {f['posted']})"),
        ("filings per portal CPU-s", f"{report['cpu']['filings_per_portal_cpu_second']}"),
        ("filing POST p50/p95/p99", ms(lat["file"])),
        ("staff POST p50/p95/p99", ms(lat["staff_post"])),
        ("staff actions/s", f"{report['staff_actions']['per_second']:.1f}"),
        ("5xx", f"{report['http_5xx']} {report['http_5xx_by_kind'] or ''}".strip()),
        (
            "filings, non-ASCII address",
            ", ".join(f"{k}: {v}" for k, v in sorted(f["statuses_non_ascii_address"].items()))
            or "none",
        ),
        (
            "other unexpected",
            ", ".join(
                f"{k}: {v}" for k, v in report["unexpected"].items() if not re.search(r" 5\d\d$", k)
            )
            or "none",
        ),
        (
            "lost / duplicated",
            f"{e['lost']} lost, {e['duplicates']} duplicated "
            f"({e['stored_without_303']} stored without a 303)"
            if e["status"] == 0
            else f"cases export FAILED (exit {e['status']})",
        ),
        (
            "audit verify",
            "intact"
            if a["intact"]
            else f"BROKEN: {a['broken_rows']} rows"
            if a["broken_rows"] is not None
            else f"failed (exit {a['status']}): {a['output']}",
        ),
        (
            "acknowledgements",
            f"{m['acknowledged_filings']} of {m['expected']} "
            f"(missing {m['missing_ascii']} ASCII, {m['missing_non_ascii']} non-ASCII; "
            f"{m['duplicates']} twice; waited {m['waited_seconds']} s after the load)",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (60)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (4)")
    parser.add_argument("--filers", type=int, default=40, help="people filing requests (40)")
    parser.add_argument("--staff", type=int, default=10, help="staff at work (10)")
    parser.add_argument("--request-timeout", type=float, default=30.0, help="per request (30 s)")
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=None,
        help="the whole run, set-up and checks included (duration + 600 s)",
    )
    parser.add_argument(
        "--non-ascii-share",
        type=float,
        default=0.1,
        help="share of filings from addresses outside ASCII (0.1)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--output", type=Path, default=None, help="JSON report (bench/results/load-TIMESTAMP.json)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    args = parser.parse_args(argv)

    run_timeout = args.run_timeout or args.duration + 600

    def alarm(signum: int, frame: FrameType | None) -> None:
        raise RunTimeout(f"the run took longer than {run_timeout:.0f} s")

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(run_timeout))
    try:
        report = run_benchmark(
            duration=args.duration,
            workers=args.workers,
            filers=args.filers,
            staff=args.staff,
            request_timeout=args.request_timeout,
            non_ascii_share=args.non_ascii_share,
            seed=args.seed,
            keep_dir=args.keep,
        )
    finally:
        signal.alarm(0)
    output = args.output or RESULTS / f"load-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    report["command"] = " ".join([".venv/bin/python -m bench.bench_load", *(argv or sys.argv[1:])])
    output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(table(report))
    print(f"report: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
