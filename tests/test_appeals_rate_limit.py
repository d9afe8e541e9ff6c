"""The appeal form is rate-limited per IP address and per appellant address (issue 5), so
that references and addresses cannot be guessed by trying them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from portal.models import Case
from tests.appeals_helpers import appeal_form
from tests.conftest import csrf_token

URL = "/appeals/new"


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {
        "APPEAL_RATE_LIMIT": "3 per hour",
        "APPEAL_ADDRESS_RATE_LIMIT": "2 per day",
        "APPEAL_PAGE_RATE_LIMIT": "8 per hour",
    }


def file(client: FlaskClient, ip: str, **changes: Any) -> int:
    environ = {"REMOTE_ADDR": ip}
    page = client.get(URL, environ_base=environ)
    data = {**appeal_form(**changes), "csrf_token": csrf_token(page)}
    return client.post(URL, data=data, environ_base=environ).status_code


def test_filings_are_limited_per_ip_address(client: FlaskClient) -> None:
    for n in range(3):
        assert file(client, "192.0.2.1", appellant_email=f"guess{n}@example.com") == 303
    response_code = file(client, "192.0.2.1", appellant_email="guess9@example.com")
    assert response_code == 429
    # Mistakes do not count, and another connection is not held up.
    assert file(client, "192.0.2.2", appellant_email="other@example.com") == 303


def test_filings_are_limited_per_appellant_address_whatever_its_spelling(
    client: FlaskClient, create_case: Callable[..., Case]
) -> None:
    assert file(client, "198.51.100.1", appellant_email="target@gmail.com") == 303
    assert file(client, "198.51.100.2", appellant_email="Tar.Get+x@googlemail.com") == 303
    assert file(client, "198.51.100.3", appellant_email="target@gmail.com") == 429
    assert file(client, "198.51.100.4", appellant_email="someone.else@gmail.com") == 303


def test_form_errors_do_not_count(client: FlaskClient) -> None:
    for _ in range(4):
        assert file(client, "203.0.113.1", reasons="") == 400
    assert file(client, "203.0.113.1") == 303


def test_the_form_page_itself_is_limited_per_ip(client: FlaskClient) -> None:
    environ = {"REMOTE_ADDR": "203.0.113.50"}
    codes = [client.get(URL, environ_base=environ).status_code for _ in range(9)]
    assert codes == [200] * 8 + [429]
    page = client.get(URL, environ_base=environ)
    assert "Too many requests from your connection" in page.get_data(as_text=True)
    assert client.get("/appeals/confirm/x", environ_base=environ).status_code == 429
