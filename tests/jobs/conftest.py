"""Fixtures for the job tests; the live app + worker (`live_service`) and the webhook fixtures
are shared from tests/conftest.py, their helpers in tests/support/live_service.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.support.apps import running_app


@pytest.fixture
def ingest_app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app on SQLite with local storage (ingest logic does not depend on the database)."""
    with running_app(request, "sqlite") as application, application.app_context():
        yield application
