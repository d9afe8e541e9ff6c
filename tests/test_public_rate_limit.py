"""Per-IP submission limit: a clear 429 page, and corrections never count against it."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import post_form
from tests.public_data import valid_request

URL = "/requests/new"


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"REQUEST_RATE_LIMIT": "2 per hour"}


def test_third_filed_request_in_an_hour_gets_a_calm_429(client: FlaskClient) -> None:
    for _ in range(3):  # mistakes do not count
        assert post_form(client, URL, valid_request(summary="")).status_code == 400
    assert post_form(client, URL, valid_request()).status_code == 303
    assert post_form(client, URL, valid_request()).status_code == 303
    response = post_form(client, URL, valid_request())
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "Too many requests from your connection" in html
    assert "Retry-After" in response.headers
    # Reading the form is never limited.
    assert client.get(URL).status_code == 200


def test_limit_is_per_address(client: FlaskClient) -> None:
    for _ in range(2):
        post_form(client, URL, valid_request())
    other = post_form(client, URL, valid_request(), environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert other.status_code == 303
