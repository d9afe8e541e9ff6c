"""Pure helpers: cleaning text, normalising links, folding addresses, signing Message-IDs."""

from __future__ import annotations

import pytest

import portal.text
from portal.addresses import EmailNotValidError, canonical_address, normalize_address, redact
from portal.message_ids import make_message_id, parse_message_id, verify_message_id
from portal.text import InvalidURL, clean_text, normalize_url, parse_url_lines


def test_clean_text_drops_controls_and_keeps_lines_and_scripts() -> None:
    assert clean_text("a\x00b\x07c\r\nd\re\tf\x9b") == "abc\nd\ne\tf"
    assert clean_text("مرحبا שלום") == "مرحبا שלום"
    assert clean_text("e\u0301") == "\u00e9"  # NFC


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://EN.Wikipedia.org/wiki/Foo", "https://en.wikipedia.org/wiki/Foo"),
        ("HTTP://example.org", "http://example.org/"),
        ("https://example.org:443/a?b=c#d", "https://example.org/a?b=c#d"),
        ("https://example.org:8443/", "https://example.org:8443/"),
        ("https://ar.wikipedia.org/wiki/%D9%85", "https://ar.wikipedia.org/wiki/%D9%85"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
    ],
)
def test_normalize_url(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://example.org/",
        "https://user:pw@example.org/",
        "https:///nohost",
        "https://exa mple.org/",
        "https://example.org/\x00",
        "https://example.org:99999/",
        "//example.org/",
        "https://" + "a" * 3000 + ".org/",
    ],
)
def test_normalize_url_refuses(raw: str) -> None:
    with pytest.raises(InvalidURL):
        normalize_url(raw)


def test_parse_url_lines_reports_each_bad_line_and_drops_duplicates() -> None:
    urls, problems = parse_url_lines(
        "https://a.org/x\n\n  https://A.org/x \njavascript:alert(1)\nhttps://b.org", limit=5
    )
    assert urls == ["https://a.org/x", "https://b.org/"]
    assert problems == ["Line 3 (javascript:alert(1)) must start with https:// or http://."]
    _, problems = parse_url_lines("\n".join(f"https://e.org/{i}" for i in range(3)), limit=2)
    assert problems == ["Give at most 2 links, one per line; this list has 3."]


@pytest.mark.parametrize(
    "variant",
    [
        "jane.doe@gmail.com",
        "Jane.Doe@Gmail.com",
        "janedoe+appeal@gmail.com",
        "j.a.n.e.d.o.e@googlemail.com",
        "JANEDOE+x+y@GOOGLEMAIL.COM",
    ],
)
def test_canonical_address_folds_gmail_variants(variant: str) -> None:
    assert canonical_address(variant) == "janedoe@gmail.com"


def test_canonical_address_keeps_dots_elsewhere_and_tolerates_junk() -> None:
    assert canonical_address("Jane.Doe+tag@Example.ORG") == "jane.doe@example.org"
    assert canonical_address("  Not An Address  ") == "not an address"


def test_normalize_address_is_syntax_only() -> None:
    assert normalize_address(" someone@EXAMPLE.org ") == "someone@example.org"
    with pytest.raises(EmailNotValidError):
        normalize_address("someone@")


def test_redact_keeps_addresses_out_of_logs() -> None:
    assert redact("jane@example.org") == "j***@example.org"
    assert redact(None) == "<none>"


def test_signed_message_ids_round_trip_and_refuse_forgery() -> None:
    mid = make_message_id(secret="s", case_id=42, recipient="Jane@Example.org", domain="p.example")
    assert parse_message_id(mid).case_id == 42  # type: ignore[union-attr]
    assert verify_message_id(mid, secret="s", recipient="jane@example.org") == 42
    assert verify_message_id(mid, secret="s", recipient="other@example.org") is None
    assert verify_message_id(mid, secret="other", recipient="jane@example.org") is None
    forged = mid.replace("oa.42.", "oa.43.")
    assert verify_message_id(forged, secret="s", recipient="jane@example.org") is None
    assert verify_message_id("<random@example.org>", secret="s", recipient="x@y.org") is None


def test_a_list_over_the_limit_is_refused_without_parsing_a_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 10: a 10,000-line list cost 2.3 s, parsed line by line before being refused."""
    parsed: list[str] = []

    def counting(raw: str, **kwargs: int) -> str:
        parsed.append(raw)
        return normalize_url(raw, **kwargs)

    monkeypatch.setattr(portal.text, "normalize_url", counting)
    lines = "\n".join(f"https://example.org/diff/{n}" for n in range(10_000))

    urls, problems = parse_url_lines(lines, limit=300)

    assert (urls, parsed) == ([], [])
    assert problems == ["Give at most 300 links, one per line; this list has 10,000."]


def test_a_list_of_many_bad_lines_names_the_first_few_only() -> None:
    """The refusal stays readable: ten lines named, and how many more are wrong."""
    urls, problems = parse_url_lines("\n".join(["not a link"] * 40 + ["https://ok.org/"]), limit=50)
    assert urls == ["https://ok.org/"]
    assert len(problems) == 11
    assert problems[0] == "Line 1 (not a link) contains spaces or invisible characters."
    assert problems[-1] == "30 more lines are not valid links."
