"""``Authentication-Results`` (RFC 8601): which header is our server's, and what it says.

Anyone can write this header into a mail. Only the one our receiving server added tells the
truth, and it says who wrote it first thing: its *authserv-id*::

    Authentication-Results: mx.example.org 1; spf=pass smtp.mailfrom=example.net;
        dkim=pass header.d=example.net; dmarc=pass (p=reject) header.from=example.net

A server prepends its header (RFC 8601 section 5), so of several naming our server the
topmost is the one it added last; lower ones came with the mail. Without the authserv-id
configured, nothing here is trusted.

Within our server's header, words the sender chose still appear: a HELO name
(``smtp.helo=dmarc=pass``), an envelope sender (``smtp.mailfrom="x;dmarc=pass"@evil``),
comments, reasons. So the header is read by the grammar: comments (which nest) are removed,
results are split at the ``;`` outside quoted strings, and a verdict is only ever the
``method=result`` that opens a result; what follows it is ``name=value`` pairs, read left to
right, so no value is ever read as a name.

Why not the ``authres`` package: on our inputs it took 2 ms per ordinary header (the whole
bridge spends about 1.3 ms per message), grows quadratically with a header's length, fails
with RecursionError on nested comments, and rejects a quoted authserv-id, which RFC 8601
allows. This makes one pass over a header, its scanning done by ``re``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# RFC 2045 token: the form an authserv-id takes in practice (a host name).
_TOKEN = re.compile(r'[^\s()<>@,;:\\"/\[\]?=\x00-\x1f\x7f]+')
# Runs taken whole and never given back (possessive, Python 3.11): linear on any input.
_QUOTED = r'"(?:[^"\\]++|\\.)*+"'
_WORD = r'[^\s";=]++'
_SPECIAL_OUTSIDE = re.compile(rf"{_QUOTED}|[()\"]", re.DOTALL)
# Searched for, so the text between is skipped in C.
_SPECIAL_INSIDE = re.compile(r"\\.|[()]", re.DOTALL)
_ANY_QUOTED = re.compile(_QUOTED, re.DOTALL)
# authserv-id = value (RFC 2045: token / quoted-string), not followed by "=" (that would be
# a result: Microsoft writes "spf=pass …" with no authserv-id). Atomic, so that "spf" is not
# cut back to "sp" to dodge the "=".
_AUTHSERV_ID = re.compile(
    r'\s*+(?>"((?:[^"\\]++|\\.)*+)"|([^\s()<>@,;:\\"/\[\]?=\x00-\x1f\x7f]++))(?!\s*=)',
    re.DOTALL,
)
# White space and (unnested) comments before the authserv-id.
_LEADING = re.compile(r"\s*+(?:\((?:[^()\\]++|\\.)*+\)\s*+)*+", re.DOTALL)
# A result: everything up to the next ";" outside quoted strings (possibly nothing).
_PIECE = re.compile(rf'((?:[^;"]++|{_QUOTED})*+)(?:;|$)', re.DOTALL)
# methodspec: method [ "/" version ] "=" result (RFC 8601 2.2), at the start of a result.
_METHODSPEC = re.compile(r"\s*+([A-Za-z0-9_-]++)(?:\s*/\s*[0-9]+)?\s*=\s*([A-Za-z0-9_-]++)")
# reasonspec and propspec alike: name "=" value, the value a quoted string (perhaps with an
# "@domain" after it) or a word. Anything else is taken whole as what it is, so the scan
# moves on past it and never reads part of a value as a name.
_PAIR_OR_OTHER = re.compile(
    rf"([A-Za-z0-9_-]++(?:\.[A-Za-z0-9_-]++)?+)\s*+=\s*+({_QUOTED}[^\s\";=]*+|{_WORD})"
    rf"|{_QUOTED}|{_WORD}|[\s=]++",
    re.DOTALL,
)
_QUOTED_VALUE = re.compile(r'"((?:[^"\\]++|\\.)*+)"', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_RESULT = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_VERDICT_METHODS = ("spf", "dkim", "dmarc")


class _Unreadable(ValueError):
    """The header breaks the grammar where it matters (an open comment or quote)."""


@dataclass(frozen=True)
class ResultInfo:
    """One ``method=result`` with its properties (``{"header.from": "example.net"}``)."""

    method: str
    result: str
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerResults:
    """What our server said: ``{"spf": "pass", "dkim": "fail", "dmarc": "none"}``, the
    domain a DMARC pass was for, and a problem for staff when its header could not be read."""

    verdicts: dict[str, str] = field(default_factory=dict)
    dmarc_from: str | None = None
    problem: str | None = None


def valid_authserv_id(value: str) -> bool:
    """Whether an operator's ``PORTAL_MAIL_AUTHSERV_ID`` can ever match (``mx.example.org``)."""
    return _TOKEN.fullmatch(value) is not None


def _without_comments(value: str) -> str:
    """``value`` with each comment (they nest, RFC 5322 3.2.2) turned into a space; raises
    :class:`_Unreadable` for a comment or quoted string never closed.

    Jumps from one parenthesis or quote to the next. A quoted string outside a comment is
    kept whole (a ``(`` in it is text); inside a comment, a quote is just text.
    """
    if "(" not in value and ")" not in value:
        if '"' in value and '"' in _ANY_QUOTED.sub("", value):
            raise _Unreadable("a quoted string is never closed")
        return value
    parts: list[str] = []
    depth = position = kept = 0
    while True:
        match = (_SPECIAL_OUTSIDE if depth == 0 else _SPECIAL_INSIDE).search(value, position)
        if match is None:
            break
        found, position = match.group(), match.end()
        if depth == 0:
            if found == "(":
                parts.append(value[kept : match.start()])
                depth = 1
            elif found in ('"', ")"):
                raise _Unreadable("an unbalanced quote or parenthesis")
        elif found == "(":
            depth += 1
        elif found == ")":
            depth -= 1
            if depth == 0:
                parts.append(" ")
                kept = position
    if depth:
        raise _Unreadable("a comment is never closed")
    parts.append(value[kept:])
    return "".join(parts)


def _unquoted(value: str) -> str:
    quoted = _QUOTED_VALUE.match(value)
    if quoted is None:
        return value
    return _QUOTED_PAIR.sub(r"\1", quoted.group(1)) + value[quoted.end() :]


def _split_id(text: str, start: int = 0) -> tuple[str, int] | None:
    """The authserv-id at ``start`` in ``text`` (lowercase) and where it ends."""
    match = _AUTHSERV_ID.match(text, start)
    if match is None:
        return None
    quoted, token = match.groups()
    authserv_id = _QUOTED_PAIR.sub(r"\1", quoted) if quoted is not None else token
    return (authserv_id.lower(), match.end()) if authserv_id else None


def authserv_id_of(value: str) -> str | None:
    """Who wrote this header (lowercase), or None when it does not say.

    Read from the start alone where it can be, so that a header of ours broken further on
    is still known as ours (and not skipped for a lower one).
    """
    leading = _LEADING.match(value)
    found = _split_id(value, leading.end() if leading else 0)
    if found is None:  # a nested comment first, say
        try:
            found = _split_id(_without_comments(value))
        except _Unreadable:
            return None
    return found[0] if found else None


def parse_value(value: str) -> tuple[str, list[ResultInfo]] | None:
    """The authserv-id and the results of one header value; None when it cannot be read."""
    try:
        text = _without_comments(value)
    except _Unreadable:
        return None
    found = _split_id(text)
    if found is None:
        return None
    authserv_id, end = found
    pieces = [match.group(1) for match in _PIECE.finditer(text, end)]
    # pieces[0] holds the version ("1") and nothing we need; "none" is no result.
    results = [info for piece in pieces[1:] if (info := _resinfo(piece)) is not None]
    return authserv_id, results


def _resinfo(piece: str) -> ResultInfo | None:
    """``method[/version] = result`` then ``reason=…`` and ``ptype.property=value`` pairs.
    Only the opening ``method=result`` is a verdict; the rest are properties."""
    spec = _METHODSPEC.match(piece)
    if spec is None:
        return None
    method, result = spec.group(1).lower(), spec.group(2).lower()
    if not _RESULT.fullmatch(result):
        return None
    properties: dict[str, str] = {}
    for pair in _PAIR_OR_OTHER.finditer(piece, spec.end()):
        name = pair.group(1)
        if name is not None and "." in name:  # "reason" is not a property
            properties.setdefault(name.lower(), _unquoted(pair.group(2)))
    return ResultInfo(method, result, properties)


def our_results(values: Iterable[str], authserv_id: str | None) -> ServerResults:
    """The verdicts of the topmost ``Authentication-Results`` naming ``authserv_id``.

    ``values`` are the header's values top-most first. One DKIM signature passing is a DKIM
    pass (a mail may carry several); for SPF and DMARC every result must agree, so a second
    result never turns a failure into a pass.
    """
    if not authserv_id:
        return ServerResults()
    ours = authserv_id.lower()
    for value in values:
        if authserv_id_of(value) != ours:
            continue
        parsed = parse_value(value)
        if parsed is None:  # ours, unreadable: never fall through to one lower down
            return ServerResults(
                problem="our mail server's Authentication-Results could not be read"
            )
        return _verdicts(parsed[1])
    return ServerResults()


def _verdicts(results: list[ResultInfo]) -> ServerResults:
    verdicts: dict[str, str] = {}
    for method in _VERDICT_METHODS:
        said = [r.result for r in results if r.method == method]
        if not said:
            continue
        if method == "dkim" and "pass" in said:
            verdicts[method] = "pass"
        elif len(set(said)) == 1:
            verdicts[method] = said[0]
        else:
            verdicts[method] = next(r for r in said if r != "pass")
    dmarc_from = None
    if verdicts.get("dmarc") == "pass":
        domains = {r.properties.get("header.from") for r in results if r.method == "dmarc"}
        if len(domains) == 1:
            dmarc_from = domains.pop()
    return ServerResults(verdicts, dmarc_from)
