"""The people of the load benchmark: requesters filing on the public form, and staff at work.

Each client is a thread with its own :class:`~bench.load_http.Browser` (its own cookies),
working in a closed loop with no pause between requests until the shared deadline: a filer
loads ``/requests/new`` for its CSRF token and cookie, then files a valid request and expects
a 303; a staff member signs in once (a TOTP code is good once per account per 30-second step,
so the session cookie is kept for the whole run), then opens the inbox, opens one of its
cases, and adds a note or changes the status through the case page's own forms.

Every filing carries a marker, ``lb<run>x<filer>x<seq>``, in its summary and in the local
part of the requester's address: the address is the ``from`` of the case's first message in
``cases export``, which is how lost and duplicated filings are counted, and the recipient of
the acknowledgement, which is how mail is matched to filings.
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from bench.load_http import Browser, Reply, csrf_token, select_options
from bench.load_portal import StaffAccount

_CASE_LINK = re.compile(r'href="/staff/cases/(\d+)"')

# (action, weight): every action of the form, bans and DMCA the most common.
ACTIONS = (
    ("global_ban", 3),
    ("event_ban", 2),
    ("dmca", 2),
    ("child_protection", 1),
    ("conduct_warning", 1),
    ("rights_removal", 1),
    ("page_protection", 1),
    ("range_block", 1),
)
# Actions for which the form asks for prior attempts (or a reason there were none).
_PRIOR_ATTEMPTS = {
    "global_ban",
    "event_ban",
    "conduct_warning",
    "rights_removal",
    "page_protection",
    "range_block",
}
SUMMARIES = (
    "Repeated harassment of other editors on talk pages after two blocks.",
    "Harcèlement répété d'une contributrice, y compris hors wiki ; voir les diffs.",
    "Wiederholte Drohungen gegen Ehrenamtliche in Zürich und München.",
    "مضايقات متكررة لمحرري ويكيبيديا العربية رغم التحذيرات",
    "Систематические угрозы участникам после блокировки, см. ссылки.",
    "在中文维基百科上反复骚扰其他编辑者，并在站外公开其个人信息。",
    "הטרדה חוזרת של עורכים בוויקיפדיה העברית",
    "Upload of our copyrighted photographs without licence — « Œuvre © 2024 ».",
    "Zero\u200bwidth and bidi \u202eembedded\u202c text in a summary, as people paste it.",
)
NAMES = ("", "José Müller", "محمد الأحمد", "Дмитрий Иванов", "李小龙", "Zoë O'Brien", "שרה כהן")
DETAILS = (
    "",
    "Further context: the user returned under a new account 🙁 after the block.",
    "Les modifications ont été masquées, mais les captures d'écran sont disponibles.",
    "Подробности по запросу.",
)
EVIDENCE = (
    "https://en.wikipedia.org/w/index.php?diff=1234567",
    "https://de.wikipedia.org/wiki/Diskussion:Zürich",
    "https://ar.wikipedia.org/wiki/نقاش:مصر",
)
PRIOR = (
    "https://en.wikipedia.org/wiki/Wikipedia:Administrators%27_noticeboard/Incidents",
    "https://fr.wikipedia.org/wiki/Wikipédia:Requête_aux_administrateurs",
)
NOTES = (
    "Checked the diffs; escalating to the team lead.",
    "Vérifié : les liens sont valides. Réponse à préparer.",
    "Связался с местными администраторами.",
    "تمت مراجعة الأدلة",
)
# Addresses outside ASCII (RFC 6531): local part, domain, or both.
_NON_ASCII_ADDRESSES = (
    "josé.{marker}@exämple.com",
    "用户.{marker}@例子.广告",
    "{marker}.дмитрий@пример.рф",
)


@dataclass(frozen=True)
class Sample:
    """One request: what it was, when it started (seconds into the run), how it went."""

    kind: str  # form, file, login, inbox, case, note, status
    started: float
    seconds: float
    status: int | None  # None: no answer (timeout, refused connection, reset)
    expected: bool
    error: str | None = None


@dataclass(frozen=True)
class Filing:
    marker: str
    ascii_address: bool
    action: str
    status: int | None


@dataclass
class Run:
    """What the clients share: the clock, the portal's address, and what they recorded."""

    host: str
    port: int
    marker_prefix: str
    deadline: float  # time.monotonic()
    started: float  # time.monotonic() when the load began
    timeout: float
    non_ascii_share: float
    seed: int
    samples: list[Sample] = field(default_factory=list)
    filings: list[Filing] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def over(self) -> bool:
        return self.stop.is_set() or time.monotonic() >= self.deadline

    def browser(self) -> Browser:
        return Browser(self.host, self.port, self.timeout)

    def call(
        self,
        browser: Browser,
        kind: str,
        path: str,
        form: dict[str, str] | None = None,
        *,
        expect: int,
    ) -> Reply | None:
        """Make one request and record it; ``None`` when no answer came."""
        begun = time.monotonic()
        try:
            reply = browser.request("POST" if form is not None else "GET", path, form)
        except OSError as exc:
            self.record(
                Sample(
                    kind,
                    begun - self.started,
                    time.monotonic() - begun,
                    None,
                    False,
                    type(exc).__name__,
                )
            )
            return None
        self.record(
            Sample(kind, begun - self.started, reply.seconds, reply.status, reply.status == expect)
        )
        return reply

    def record(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)

    def filed(self, filing: Filing) -> None:
        with self._lock:
            self.filings.append(filing)


def request_form(
    rng: random.Random, marker: str, *, ascii_address: bool
) -> tuple[str, dict[str, str]]:
    """A valid filing for one of the form's actions, in one of several scripts."""
    action = rng.choices([a for a, _ in ACTIONS], weights=[w for _, w in ACTIONS])[0]
    if ascii_address:
        address = f"{marker}@example.org"
    else:
        address = rng.choice(_NON_ASCII_ADDRESSES).format(marker=marker)
    form = {
        "action": action,
        "summary": f"{rng.choice(SUMMARIES)} [{marker}]",
        "evidence_urls": "\n".join(rng.sample(EVIDENCE, rng.randint(0, 2))),
        "requester_name": rng.choice(NAMES),
        "requester_email": address,
        "details": rng.choice(DETAILS),
        "website": "",  # the honeypot, left empty as people do
    }
    if action in _PRIOR_ATTEMPTS:
        if rng.random() < 0.8:
            form["prior_attempt_urls"] = rng.choice(PRIOR)
        else:
            form["no_prior_attempt_reason"] = "Die lokale Community ist selbst betroffen."
    if action == "event_ban":
        form["scope_location"] = rng.choice(["Zürich", "Kraków", "São Paulo", "القاهرة"])
        form["scope_project"] = rng.choice(["", "de.wikipedia", "Wikimania"])
        form["scope_until"] = (date.today() + timedelta(days=rng.randint(30, 400))).isoformat()
    return action, form


def filer(run: Run, number: int) -> None:
    """One person filing requests, one after the other, until the deadline."""
    rng = random.Random(run.seed * 1000 + number)
    browser = run.browser()
    seq = 0
    while not run.over():
        page = run.call(browser, "form", "/requests/new", expect=200)
        token = csrf_token(page.body) if page is not None and page.status == 200 else None
        if token is None:
            time.sleep(0.2)  # a failed page load: try again shortly rather than spin
            continue
        if run.over():
            return
        seq += 1
        marker = f"{run.marker_prefix}x{number:03d}x{seq:05d}"
        ascii_address = rng.random() >= run.non_ascii_share
        action, form = request_form(rng, marker, ascii_address=ascii_address)
        reply = run.call(
            browser, "file", "/requests/new", {**form, "csrf_token": token}, expect=303
        )
        run.filed(Filing(marker, ascii_address, action, reply.status if reply else None))


def staff_member(run: Run, browser: Browser, number: int) -> None:
    """Work cases from the inbox until the deadline, signed in with ``browser``'s cookie."""
    rng = random.Random(run.seed * 1000 + 500 + number)
    while not run.over():
        inbox = run.call(browser, "inbox", "/staff/", expect=200)
        ids = _CASE_LINK.findall(inbox.body) if inbox is not None and inbox.status == 200 else []
        if not ids:
            time.sleep(0.2)  # no case in this person's queues yet
            continue
        case_id = rng.choice(ids)
        page = run.call(browser, "case", f"/staff/cases/{case_id}", expect=200)
        token = csrf_token(page.body) if page is not None and page.status == 200 else None
        if page is None or token is None or run.over():
            continue
        statuses, current = select_options(page.body, "status")
        choices = [s for s in statuses if s not in (current, "decided")]  # decided needs a decision
        if choices and rng.random() < 0.5:
            form = {"status": rng.choice(choices), "csrf_token": token}
            run.call(browser, "status", f"/staff/cases/{case_id}/status", form, expect=303)
        else:
            note = f"{rng.choice(NOTES)} (#{number})"
            form = {"body": note, "csrf_token": token}
            run.call(browser, "note", f"/staff/cases/{case_id}/note", form, expect=303)


def sign_in(run: Run, account: StaffAccount) -> Browser | None:
    """A browser signed in as ``account`` (once: its TOTP code cannot be used again)."""
    browser = run.browser()
    page = run.call(browser, "login", "/staff/login", expect=200)
    token = csrf_token(page.body) if page is not None else None
    if token is None:
        return None
    form = {
        "email": account.email,
        "password": account.password,
        "code": account.code(),
        "csrf_token": token,
    }
    reply = run.call(browser, "login", "/staff/login", form, expect=302)
    return browser if reply is not None and reply.status == 302 else None
