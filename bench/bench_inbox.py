"""Time the staff inbox on the database bench.seed_inbox made (issue 4).

Requests go in-process through the WSGI app with Flask's test client, signed in as a
Trust & Safety admin through the real /staff/login form (password and a TOTP code), so every
measured request runs the whole stack: session, login check, queries, template. Each page is
requested ``--warmup`` times, then ``--runs`` times under ``time.perf_counter``; the median
and 95th percentile are printed as a Markdown table and kept in ``bench/results/``.

    .venv/bin/python -m bench.bench_inbox [--db PATH] [--runs 200] [--warmup 10]
"""

from __future__ import annotations

import argparse
import html
import json
import os
import platform
import re
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any
from urllib.parse import quote_plus

import pyotp
from flask import Flask
from flask.testing import FlaskClient

from bench import seed_inbox
from portal import create_app
from portal.extensions import db
from portal.models import StaffUser
from portal.models.base import utcnow

RESULTS = seed_inbox.ROOT / "bench" / "results"
TARGETS_MS = {"inbox": 50.0, "search": 200.0}  # at the 95th percentile
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
_NEXT = re.compile(r'href="([^"]*after=[^"]*)"')
_CASE_LINK = re.compile(r'href="/staff/cases/\d+"')


@dataclass
class Result:
    name: str
    path: str
    target: str
    median_ms: float
    p95_ms: float
    min_ms: float
    max_ms: float
    bytes: int
    rows: int
    target_ms: float | None

    @property
    def verdict(self) -> str:
        if self.target_ms is None:
            return ""
        return "ok" if self.p95_ms < self.target_ms else "MISSED"


def make_app(database: Path, meta: dict[str, Any]) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": meta["secret_key"],
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database.resolve()}",
            "OUTBOX_DIR": str(RESULTS / "outbox"),
            "BLOB_DIR": str(RESULTS / "blobs"),
            "LOG_LEVEL": "WARNING",
        }
    )


def unused_code(app: Flask, email: str) -> str:
    """A TOTP code this account has not used yet (codes are single-use), as tests do.

    The app accepts the next 30-second step too; when a run straight after another has
    used that one up as well, wait for the clock rather than fail (and count as a failure).
    """
    with app.app_context():
        user = db.session.scalar(db.select(StaffUser).where(StaffUser.email == email))
        assert user is not None, f"no staff account {email}"
        assert user.totp_secret, f"{email} has no TOTP secret"
        totp = pyotp.TOTP(user.totp_secret)
        last = user.last_totp_step
        db.session.remove()
    while last is not None and last >= totp.timecode(utcnow()) + 1:
        time.sleep(1)
    step = totp.timecode(utcnow())
    if last is not None and last >= step - 1:
        step = last + 1
    return totp.generate_otp(step)


def login(client: FlaskClient, app: Flask, email: str, password: str) -> None:
    page = client.get("/staff/login")
    match = _CSRF.search(page.get_data(as_text=True))
    assert match, "no CSRF token on the login page"
    response = client.post(
        "/staff/login",
        data={
            "email": email,
            "password": password,
            "code": unused_code(app, email),
            "csrf_token": match[1] or match[2],
        },
    )
    assert response.status_code == 302, f"login failed: {response.status_code}"
    assert client.get("/staff/").status_code == 200, "not signed in after the login form"


def fetch(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    body = response.get_data(as_text=True)
    assert response.status_code == 200, f"{path}: HTTP {response.status_code}"
    assert body, f"{path}: empty body"
    return body


def timed(client: FlaskClient, paths: Callable[[int], str], runs: int, warmup: int) -> list[float]:
    for number in range(warmup):
        fetch(client, paths(number))
    samples = []
    for number in range(warmup, warmup + runs):
        path = paths(number)
        started = time.perf_counter()
        response = client.get(path)
        body = response.get_data()
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, f"{path}: HTTP {response.status_code}"
        assert body, f"{path}: empty body"
        samples.append(elapsed * 1000)
    return samples


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(fraction * 100) - 1]


def page_after(client: FlaskClient, start: str, pages: int) -> str:
    """The URL of page ``pages`` of a queue, following its "Next page" links."""
    path = start
    for _ in range(pages - 1):
        found = _NEXT.search(fetch(client, path))
        assert found, f"{path}: no next page"
        path = html.unescape(found[1])
    return path


def fts_count(database: Path, words: str) -> tuple[int, int]:
    """Messages and cases that a search for ``words`` matches (as portal.search builds it)."""
    from portal.search import fts_query

    query = fts_query(words)
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        messages = connection.execute(
            "SELECT count(*) FROM message_search WHERE message_search MATCH ?", (query,)
        ).fetchone()[0]
        cases = connection.execute(
            "SELECT count(DISTINCT case_id) FROM messages WHERE id IN "
            "(SELECT rowid FROM message_search WHERE message_search MATCH ?)",
            (query,),
        ).fetchone()[0]
    finally:
        connection.close()
    return messages, cases


def search_terms(database: Path) -> dict[str, str]:
    """Words by how often the seed used them (its Zipf rank), plus a sender address."""
    content = seed_inbox.ENGLISH[len(seed_inbox.FUNCTION_WORDS) :]
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        address = connection.execute(
            "SELECT email FROM reporters ORDER BY id LIMIT 1 OFFSET "
            "(SELECT count(*) / 7 FROM reporters)"
        ).fetchone()
        reference = connection.execute(
            "SELECT reference FROM cases ORDER BY id LIMIT 1 OFFSET (SELECT count(*) / 2 FROM cases)"
        ).fetchone()
        # A username quoted in one or two messages: what staff look up most.
        quoted = connection.execute(
            "SELECT body_text FROM messages WHERE body_text LIKE '%See also User:%' LIMIT 1"
        ).fetchone()
    finally:
        connection.close()
    username = quoted[0].rsplit("User:", 1)[1].split()[0] if quoted else "Nobody"
    return {
        "common word": content[0],
        "medium word": content[600],
        "uncommon word": "daguerreotype",
        "rare (a username)": username,
        "two words": f"{content[5]} {content[40]}",
        "very common (the)": "the",
        "sender address": address[0],
        "reference": reference[0],
    }


def run(database: Path, runs: int, warmup: int, seed: int, page: int = 50) -> dict[str, Any]:
    meta = json.loads(Path(f"{database}.json").read_text())
    app = make_app(database, meta)
    client = app.test_client()
    account = meta["staff"][0]
    assert set(account["roles"]) == {"trust_safety", "admin"}
    login(client, app, account["email"], meta["password"])

    load_before = [round(x, 2) for x in os.getloadavg()]
    rng = Random(seed)
    case_count = meta["counts"]["cases"]
    case_ids = [rng.randint(1, case_count) for _ in range(runs + warmup)]
    terms = search_terms(database)
    page50 = page_after(client, "/staff/", page)
    page50_team = page_after(client, "/staff/?team=trust_safety", page)

    def fixed(path: str) -> Callable[[int], str]:
        return lambda _: path

    pages: list[tuple[str, str, Callable[[int], str], str, float | None]] = [
        ("inbox", "/staff/", fixed("/staff/"), "inbox", TARGETS_MS["inbox"]),
        (
            "queue: trust_safety",
            "/staff/?team=trust_safety",
            fixed("/staff/?team=trust_safety"),
            "inbox",
            TARGETS_MS["inbox"],
        ),
        (
            "queue: legal dmca overdue",
            "/staff/?team=legal&action=dmca&overdue=1",
            fixed("/staff/?team=legal&action=dmca&overdue=1"),
            "inbox",
            TARGETS_MS["inbox"],
        ),
        (
            "queue: unassigned new",
            "/staff/?assignee=none&status=new",
            fixed("/staff/?assignee=none&status=new"),
            "inbox",
            TARGETS_MS["inbox"],
        ),
        (
            f"inbox page {page} (keyset)",
            "/staff/?after=…",
            fixed(page50),
            "inbox",
            TARGETS_MS["inbox"],
        ),
        (
            f"trust_safety page {page} (keyset)",
            "/staff/?team=trust_safety&after=…",
            fixed(page50_team),
            "inbox",
            TARGETS_MS["inbox"],
        ),
        (
            "case page (random ids)",
            "/staff/cases/<id>",
            lambda number: f"/staff/cases/{case_ids[number]}",
            "",
            None,
        ),
    ]
    for label, words in terms.items():
        path = f"/staff/?q={quote_plus(words)}"
        pages.append(
            (f"search: {label} «{words}»", path, fixed(path), "search", TARGETS_MS["search"])
        )

    results: list[Result] = []
    for name, shown, paths, target, target_ms in pages:
        first = fetch(client, paths(0))
        samples = timed(client, paths, runs, warmup)
        result = Result(
            name=name,
            path=shown,
            target=target,
            median_ms=statistics.median(samples),
            p95_ms=percentile(samples, 0.95),
            min_ms=min(samples),
            max_ms=max(samples),
            bytes=len(first.encode()),
            rows=0 if shown.startswith("/staff/cases/") else len(_CASE_LINK.findall(first)),
            target_ms=target_ms,
        )
        results.append(result)
        print(
            f"{name:48} median {result.median_ms:8.1f} ms  p95 {result.p95_ms:8.1f} ms  "
            f"rows {result.rows:3}  {result.verdict}",
            flush=True,
        )

    matches = {label: fts_count(database, words) for label, words in terms.items()}
    size = seed_inbox.file_size(database)
    return {
        "database": str(database),
        "db_bytes": size,
        "runs": runs,
        "warmup": warmup,
        "login": "real /staff/login form: password + TOTP code",
        "machine": {
            "nproc": os.cpu_count(),
            "python": sys.version.split()[0],
            "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "seed": {k: meta[k] for k in ("counts", "seconds", "seconds_total", "db_bytes")},
        "search_matches": {
            label: {"words": terms[label], "messages": m, "cases": c}
            for label, (m, c) in matches.items()
        },
        "results": [result.__dict__ | {"verdict": result.verdict} for result in results],
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| page | request | median ms | p95 ms | target (p95) | |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for row in report["results"]:
        target = f"< {row['target_ms']:.0f} ms" if row["target_ms"] else "—"
        lines.append(
            f"| {row['name']} | `{row['path']}` | {row['median_ms']:.1f} | {row['p95_ms']:.1f} "
            f"| {target} | {row['verdict']} |"
        )
    lines += ["", "| search | messages matched | cases matched |", "| --- | ---: | ---: |"]
    for label, found in report["search_matches"].items():
        lines.append(f"| {label} «{found['words']}» | {found['messages']:,} | {found['cases']:,} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=seed_inbox.DEFAULT_PATH)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7, help="picks the random case ids")
    parser.add_argument("--page", type=int, default=50, help="the deep page to time")
    parser.add_argument("--out", type=Path, default=RESULTS / "inbox_bench.json")
    args = parser.parse_args(argv)
    if not args.db.exists():
        parser.error(f"{args.db} does not exist: run python -m bench.seed_inbox first")
    report = run(args.db, args.runs, args.warmup, args.seed, args.page)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print()
    print(f"database: {report['db_bytes'] / 2**20:,.0f} MiB, {report['machine']}")
    print(markdown(report))
    missed = [row["name"] for row in report["results"] if row["verdict"] == "MISSED"]
    if missed:
        print(f"\nmissed the target: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
