"""Case references: how they are written, and how they are found in what people send.

``OA-2026-000123``: the prefix, the year the case was opened and its number. One pattern
serves the mail bridge (a reference in a subject), appeals (the case a filing names) and
search (a reference typed in the search box goes straight to its case).
"""

from __future__ import annotations

import re

REFERENCE_PREFIX = "OA"


def format_reference(year: int, number: int) -> str:
    """``OA-2026-000123``: short enough to quote in a subject, sortable, not guessable by year."""
    return f"{REFERENCE_PREFIX}-{year:04d}-{number:06d}"


# A reference as people quote it, in whatever case they typed it (the one pattern for the
# mail bridge, appeals and search). Six digits at least: the number is the case's id, which
# passes 999,999 one day, and OA-2027-1000000 must thread like OA-2027-000123.
REFERENCE_PATTERN = re.compile(rf"\b{REFERENCE_PREFIX}-\d{{4}}-\d{{6,}}\b", re.IGNORECASE)


def references_in(text: str | None) -> list[str]:
    """Every case reference in ``text``, upper-cased, in order of appearance, once each."""
    return list(dict.fromkeys(found.upper() for found in REFERENCE_PATTERN.findall(text or "")))


def find_reference(text: str | None) -> str | None:
    """The one case reference ``text`` names, upper-cased; None for none or several."""
    found = references_in(text)
    return found[0] if len(found) == 1 else None


def named_reference(subject: str | None, body: str | None) -> str | None:
    """The reference a mail names: from its subject when the subject names any (a subject
    with two is ambiguous and left to staff), else from its body."""
    if REFERENCE_PATTERN.search(subject or ""):
        return find_reference(subject)
    return find_reference(body)
