"""Driving the app as a person would: the CSRF token of a page, the sign-up and sign-in forms,
and the headers a page's script sends."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

GOOD_PASSWORD = "correct horse battery staple"


def csrf_token(html: str) -> str:
    """The CSRF token embedded in a rendered page."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html
    )
    assert match, "page has no CSRF token"
    return match.group(1)


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


def api_headers(client: FlaskClient) -> dict[str, str]:
    """Headers a page's script sends: JSON plus the CSRF token from the page."""
    token = csrf_token(client.get("/dashboard").get_data(as_text=True))
    return {"X-CSRFToken": token, "Content-Type": "application/json"}
