"""Case references: how they are written and found (portal.policy.references), no app."""

from __future__ import annotations

import pytest

from portal.policy.references import (
    REFERENCE_PATTERN,
    find_reference,
    format_reference,
    named_reference,
    references_in,
)


@pytest.mark.parametrize(
    ("year", "number", "expected"),
    [
        (2026, 1, "OA-2026-000001"),
        (2026, 123, "OA-2026-000123"),
        (2026, 999_999, "OA-2026-999999"),
        (987, 5, "OA-0987-000005"),
        # The number is the case id: past 999,999 it grows a digit and is still found.
        (2027, 1_000_000, "OA-2027-1000000"),
    ],
)
def test_a_reference_is_prefix_year_and_six_digits(year: int, number: int, expected: str) -> None:
    reference = format_reference(year, number)
    assert reference == expected
    assert REFERENCE_PATTERN.fullmatch(reference)


def test_references_are_found_in_any_case_once_each_in_order() -> None:
    text = "Re: [oa-2026-000123] about OA-2026-000007 and again OA-2026-000123; XOA-2026-000001"
    assert references_in(text) == ["OA-2026-000123", "OA-2026-000007"]
    assert references_in(None) == []
    assert references_in("[OA-2027-1234567] and OA-2026-00012") == ["OA-2027-1234567"]


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        ("Appeal of oa-2026-000123", None, "OA-2026-000123"),
        ("Appeal", "My case is OA-2026-000123, thanks.", "OA-2026-000123"),
        ("Appeal", "no reference here", None),
        ("OA-2026-000001 and OA-2026-000002", "OA-2026-000003", None),
        ("Appeal OA-2026-000001", "quoting OA-2026-000009", "OA-2026-000001"),
        ("XOA-2026-0001234", None, None),
    ],
)
def test_the_reference_a_mail_names(subject: str, body: str | None, expected: str | None) -> None:
    assert named_reference(subject, body) == expected
    assert find_reference("OA-2026-000001 OA-2026-000001") == "OA-2026-000001"
