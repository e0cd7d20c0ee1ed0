"""Fixtures for /api/v1: Ada on the Pro plan with a read-and-write key."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.app.api_v1.support import Api, create_key_in_browser
from tests.support.accounts import activate_plan


@pytest.fixture
def api(app: Flask, signed_in: FlaskClient) -> Api:
    """Ada (Pro plan) as a script with a read-and-write key."""
    activate_plan(app, "ada@example.com", "pro")
    return Api(app, create_key_in_browser(signed_in))
