"""Fixtures for driving the app as a person would (the helpers are in tests/support/web.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.web import sign_up


@pytest.fixture
def signed_in(client: FlaskClient) -> FlaskClient:
    """A client with a fresh account, signed in."""
    assert sign_up(client).status_code == 302
    return client


@pytest.fixture
def other_client(app: Flask) -> Callable[[str], FlaskClient]:
    """Makes further signed-in clients, one per e-mail."""

    def make(email: str) -> FlaskClient:
        other = app.test_client()
        assert sign_up(other, email=email).status_code == 302
        return other

    return make
