"""Billing fixtures: the app in Stripe mode against a local Stripe-shaped server (the session's
`stripe_server`, from tests/conftest.py). Helpers are in tests/support/billing.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.apps import DATABASES, running_app
from tests.support.billing import PLANS_JSON
from tests.support.stripe_server import SECRET_KEY, WEBHOOK_SECRET, StripeServer
from tests.support.web import sign_up


@pytest.fixture(params=DATABASES)
def stripe_app(request: pytest.FixtureRequest, stripe_server: StripeServer) -> Iterator[Flask]:
    """The app with Stripe billing pointed at the local server, on SQLite and PostgreSQL."""
    stripe_server.reset()
    settings = {
        "billing_mode": "stripe",
        "stripe_secret_key": SECRET_KEY,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "stripe_api_base": stripe_server.url,
        "stripe_timeout_s": 1,
        "stripe_max_network_retries": 1,
        "plans_json": PLANS_JSON,
    }
    with running_app(request, request.param, settings) as application:
        yield application


@pytest.fixture
def stripe_client(stripe_app: Flask) -> FlaskClient:
    """A signed-in person on the Stripe-mode app."""
    client = stripe_app.test_client()
    assert sign_up(client, email="payer@example.com").status_code == 302
    return client
