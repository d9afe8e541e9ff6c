"""Issue 10, section 5: whose ``Authentication-Results`` count, and what proves a sender.

Pure functions at their edges: RFC 8601 parsing of the header, the choice of our own server's
header, and the proof that a mail's From is who wrote it (a DMARC pass from our server for
that domain, or a reply citing a Message-ID we signed for that address).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailbridge.authresults import authserv_id_of, our_results, parse_value, valid_authserv_id
from mailbridge.parse import ParsedMail, parse_mail
from mailbridge.senders import Proof, sender_proof
from portal.message_ids import make_message_id
from tests.mailbridge_helpers import make_mail

OURS = "mx.example.org"
SECRET = "test-secret-key"
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PASS = f"{OURS}; spf=pass smtp.mailfrom=example.org; dkim=pass header.d=example.org;" + (
    " dmarc=pass (p=reject) header.from=example.org"
)


# -- which header is ours ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("mx.example.org; none", "mx.example.org"),
        ("  MX.Example.ORG 1; spf=pass", "mx.example.org"),
        ("(our relay (the first)) mx.example.org; spf=pass", "mx.example.org"),
        ('"mx.example.org" (quoted, RFC 2045 value); spf=pass', "mx.example.org"),
        ("mx.example.org(no space);spf=pass", "mx.example.org"),
        ("spf=pass smtp.mailfrom=x.org", None),  # Microsoft's style: no authserv-id at all
        ("", None),
        ("(never closed; spf=pass", None),
        ('"never closed; spf=pass', None),
    ],
)
def test_the_authserv_id_is_read_as_rfc_8601_writes_it(value: str, expected: str | None) -> None:
    assert authserv_id_of(value) == expected


def test_without_an_authserv_id_configured_no_header_is_trusted() -> None:
    assert our_results([PASS], None).verdicts == {}


def test_a_header_from_another_server_is_ignored_even_when_it_is_on_top() -> None:
    forged = "mx.attacker.example; spf=pass; dkim=pass; dmarc=pass header.from=example.org"
    ours = f"{OURS}; spf=none; dkim=none; dmarc=none"
    found = our_results([forged, ours], OURS)
    assert found.verdicts == {"spf": "none", "dkim": "none", "dmarc": "none"}
    assert found.dmarc_from is None
    assert our_results([forged], OURS).verdicts == {}


def test_of_several_headers_from_our_server_the_topmost_counts() -> None:
    """Our server prepends its header; one lower down with our id was written before it."""
    below = f"{OURS}; spf=pass; dkim=pass; dmarc=pass header.from=example.org"
    top = f"{OURS}; spf=fail smtp.mailfrom=example.org; dkim=none; dmarc=fail header.from=x.org"
    assert our_results([top, below], OURS).verdicts["dmarc"] == "fail"


def test_an_unreadable_header_of_ours_is_not_skipped_for_one_lower_down() -> None:
    below = f"{OURS}; dmarc=pass header.from=example.org"
    found = our_results([f"{OURS}; dmarc=pass (never closed", below], OURS)
    assert found.verdicts == {}
    assert found.problem is not None


@pytest.mark.parametrize(
    "attack",
    [
        "spf=none smtp.helo=dmarc=pass; dmarc=fail header.from=example.org",
        'spf=none smtp.mailfrom="x;dmarc=pass"@evil.example; dmarc=fail header.from=example.org',
        "spf=none (dmarc=pass; see) smtp.mailfrom=evil.example; dmarc=fail header.from=x.org",
        'spf=none reason="dmarc=pass"; dmarc=fail header.from=example.org',
    ],
)
def test_words_the_sender_controls_never_read_as_a_verdict(attack: str) -> None:
    """HELO names, envelope senders, comments and reasons are the sender's text."""
    found = our_results([f"{OURS}; {attack}"], OURS)
    assert found.verdicts["dmarc"] == "fail"
    assert found.dmarc_from is None


def test_results_methods_and_properties_are_parsed() -> None:
    parsed = parse_value(
        'mx.example.org 1 (v1);\r\n\tspf=pass (sender SPF authorized) smtp.mailfrom="a b"@x.org;'
        "\r\n\tdkim/1=pass header.d=example.org header.s=s1 header.b=abc;"
        ' dkim = fail reason="bad sig" header.d=other.example;\r\n\tDMARC=Pass header.from=Example.ORG'
    )
    assert parsed is not None
    authserv_id, results = parsed
    assert authserv_id == OURS
    assert [(r.method, r.result) for r in results] == [
        ("spf", "pass"),
        ("dkim", "pass"),
        ("dkim", "fail"),
        ("dmarc", "pass"),
    ]
    assert results[3].properties == {"header.from": "Example.ORG"}
    assert results[0].properties == {"smtp.mailfrom": "a b@x.org"}


def test_verdicts_one_passing_dkim_signature_is_a_pass_but_dmarc_must_agree() -> None:
    found = our_results(
        [f"{OURS}; dkim=fail; dkim=pass; dmarc=pass header.from=a.org; dmarc=fail"], OURS
    )
    assert found.verdicts["dkim"] == "pass"
    assert found.verdicts["dmarc"] == "fail"
    assert found.dmarc_from is None


def test_a_hostile_header_is_read_in_linear_time_without_crashing() -> None:
    nested = f"{OURS}; dmarc=pass " + "(" * 50_000 + ")" * 50_000
    many = f"{OURS}; " + "; ".join(f"dkim=pass header.d=d{n}.example" for n in range(20_000))
    assert our_results([nested], OURS).verdicts == {"dmarc": "pass"}
    assert our_results([many], OURS).verdicts == {"dkim": "pass"}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("mx.example.org", True),
        ("mx1.mail.example.org", True),
        ("mx.example.org;", False),
        ("mx example", False),
        ("", False),
        ('"mx"', False),
    ],
)
def test_the_configured_authserv_id_must_be_a_token(value: str, valid: bool) -> None:
    assert valid_authserv_id(value) is valid


# -- what proves a sender -------------------------------------------------------------------------


def parsed(raw: bytes, authserv_id: str | None = OURS) -> ParsedMail:
    return parse_mail(raw, arrived_at=NOW, authserv_id=authserv_id)


def with_results(value: str, raw: bytes) -> bytes:
    return f"Authentication-Results: {value}\r\n".encode() + raw


def test_our_dmarc_pass_for_the_from_domain_proves_the_sender() -> None:
    mail = parsed(with_results(PASS, make_mail("Hi", sender="Ann <ann@example.org>")))
    assert sender_proof(mail, secret=SECRET) is Proof.DMARC


@pytest.mark.parametrize(
    "value",
    [
        f"{OURS}; dmarc=pass header.from=other.example",  # another domain's pass
        f"{OURS}; dmarc=pass",  # a pass for which domain?
        f"{OURS}; dmarc=none header.from=example.org",
        f"{OURS}; dmarc=fail header.from=example.org",
        "mx.attacker.example; dmarc=pass header.from=example.org",
    ],
)
def test_anything_short_of_our_pass_for_that_domain_proves_nothing(value: str) -> None:
    mail = parsed(with_results(value, make_mail("Hi", sender="ann@example.org")))
    assert sender_proof(mail, secret=SECRET) is None


def test_a_pass_for_an_internationalised_domain_matches_either_spelling() -> None:
    # SMTPUTF8 mail carries the address in UTF-8 (RFC 6532).
    raw = make_mail("Hi", sender="jose@example.org").replace(
        b"From: jose@example.org", "From: José <jose@exämple.org>".encode()
    )
    mail = parsed(with_results(f"{OURS}; dmarc=pass header.from=xn--exmple-cua.org", raw))
    assert sender_proof(mail, secret=SECRET) is Proof.DMARC


def test_a_reply_citing_our_message_id_for_that_address_proves_the_sender() -> None:
    ours = make_message_id(secret=SECRET, case_id=7, recipient="ann@example.org", domain="x.org")
    mine = parsed(make_mail("Re: hi", sender="Ann@Example.org", references=[ours]))
    assert sender_proof(mine, secret=SECRET) is Proof.REPLY
    theirs = parsed(make_mail("Re: hi", sender="bob@example.org", references=[ours]))
    assert sender_proof(theirs, secret=SECRET) is None
    failed = parsed(
        with_results(
            f"{OURS}; dmarc=fail header.from=example.org",
            make_mail("Re: hi", sender="ann@example.org", in_reply_to=ours),
        )
    )
    assert sender_proof(failed, secret=SECRET) is None


def test_mail_read_without_our_authserv_id_proves_nothing_by_its_headers() -> None:
    """``mailbridge import``: results in a file were written by whoever had the file."""
    mail = parsed(with_results(PASS, make_mail("Hi", sender="ann@example.org")), None)
    assert mail.auth_results == {}
    assert sender_proof(mail, secret=SECRET) is None
