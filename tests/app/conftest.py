"""Helpers for driving the app as a person would."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import csrf_token

GOOD_PASSWORD = "correct horse battery staple"


def sign_up(
    client: FlaskClient,
    email: str = "ada@example.com",
    password: str = GOOD_PASSWORD,
    name: str = "Ada Lovelace",
    adult: bool = True,
    company: str = "",
) -> TestResponse:
    """Fill in and send the sign-up form."""
    token = csrf_token(client.get("/sign-up").get_data(as_text=True))
    form = {"csrf_token": token, "name": name, "email": email, "password": password}
    form["company"] = company
    if adult:
        form["adult"] = "y"
    return client.post("/sign-up", data=form)


def sign_in(client: FlaskClient, email: str, password: str = GOOD_PASSWORD) -> TestResponse:
    """Fill in and send the sign-in form."""
    token = csrf_token(client.get("/sign-in").get_data(as_text=True))
    return client.post("/sign-in", data={"csrf_token": token, "email": email, "password": password})


@pytest.fixture
def signed_in(client: FlaskClient) -> FlaskClient:
    """A client with a fresh account, signed in."""
    assert sign_up(client).status_code == 302
    return client


@pytest.fixture
def other_client(app) -> Callable[[str], FlaskClient]:  # type: ignore[no-untyped-def]
    """Makes further signed-in clients, one per e-mail."""

    def make(email: str) -> FlaskClient:
        other = app.test_client()
        assert sign_up(other, email=email).status_code == 302
        return other

    return make


def api_headers(client: FlaskClient) -> dict[str, str]:
    """Headers a page's script sends: JSON plus the CSRF token from the page."""
    token = csrf_token(client.get("/dashboard").get_data(as_text=True))
    return {"X-CSRFToken": token, "Content-Type": "application/json"}
