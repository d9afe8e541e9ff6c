"""Sample form data shared by the public form tests."""

from __future__ import annotations

from typing import Any


def valid_request(**changes: Any) -> dict[str, Any]:
    data = {
        "action": "global_ban",
        "summary": "User:Example has harassed several editors across three wikis.",
        "evidence_urls": "https://en.wikipedia.org/w/index.php?diff=1\nhttps://fr.wikipedia.org/w/index.php?diff=2",
        "prior_attempt_urls": "https://en.wikipedia.org/wiki/Wikipedia:ANI#Example",
        "no_prior_attempt_reason": "",
        "requester_name": "Reporter",
        "requester_email": "reporter@example.org",
        "details": "",
        "scope_location": "",
        "scope_project": "",
        "scope_until": "",
    }
    data.update(changes)
    return data
