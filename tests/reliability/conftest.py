"""Reliability fixtures: the app on SQLite (or on both databases). The small world of owned
objects to aim at is in tests/support/world.py, seeded accounts in tests/support/accounts.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.support.apps import DATABASES, running_app


@pytest.fixture
def rel_app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app on SQLite (the PostgreSQL runs of tests/app cover the database differences)."""
    with running_app(request, "sqlite") as application:
        yield application


@pytest.fixture(params=DATABASES)
def any_db_app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app on SQLite, then on PostgreSQL: for the walks where the database's own strictness
    (integer ranges, text types, constraint timing) could turn bad input into a 500."""
    with running_app(request, request.param) as application:
        yield application
