"""Shared fixtures: real Redis and PostgreSQL servers, the app on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from tests.support.processes import PostgresServer, RedisServer
from tests.support.smtp import SmtpServer

DATABASES = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private redis-server for the whole run."""
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the whole run, started on first use."""
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server for the whole run; see `mailbox` for a per-test view."""
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def mailbox(smtp_server: SmtpServer) -> SmtpServer:
    """The SMTP server, emptied for this test."""
    smtp_server.clear()
    return smtp_server


@pytest.fixture(scope="session")
def database_urls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """A migrated database per backend, created once; tests empty the tables afterwards."""
    return {}


def _migrated_url(request: pytest.FixtureRequest, kind: str, cache: dict[str, str]) -> str:
    if kind in cache:
        return cache[kind]
    if kind == "sqlite":
        path = request.getfixturevalue("tmp_path_factory").mktemp("sqlite") / "attune.db"
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_server").create_database("attune_test")
    from flask_migrate import upgrade

    from app import create_app

    app = create_app(_overrides(request, url))
    with app.app_context():
        upgrade()
    cache[kind] = url
    return url


def _overrides(request: pytest.FixtureRequest, database_url: str) -> dict[str, Any]:
    instance: Path = request.getfixturevalue("tmp_path_factory").mktemp("instance")
    return {
        "env": "testing",
        "instance_path": instance,
        "secret_key": "test-secret-key-" + "x" * 32,
        "database_url": database_url,
        "redis_url": request.getfixturevalue("redis_server").url,
        "base_url": "http://localhost",
        "smtp_host": "127.0.0.1",
        "smtp_port": request.getfixturevalue("smtp_server").port,
        "smtp_starttls": False,
    }


@contextmanager
def running_app(
    request: pytest.FixtureRequest, kind: str, extra: dict[str, Any] | None = None
) -> Iterator[Flask]:
    """An app on the migrated `kind` database, emptied again when the block ends."""
    from app import create_app
    from app.extensions import db

    url = _migrated_url(request, kind, request.getfixturevalue("database_urls"))
    overrides = {**_overrides(request, url), **(extra or {})}
    application = create_app(overrides)
    Redis.from_url(overrides["redis_url"]).flushdb()
    try:
        yield application
    finally:
        with application.app_context():
            db.session.remove()
            with db.engine.begin() as connection:
                for table in reversed(db.metadata.sorted_tables):
                    connection.execute(table.delete())
            db.engine.dispose()


@pytest.fixture(params=DATABASES)
def app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app on a freshly emptied database: once on SQLite, once on PostgreSQL."""
    with running_app(request, request.param) as application:
        yield application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser-like test client."""
    return app.test_client()


def csrf_token(html: str) -> str:
    """The CSRF token embedded in a rendered page."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html
    )
    assert match, "page has no CSRF token"
    return match.group(1)


def activate_plan(app: Flask, email: str, plan: str = "pro", days_left: int = 29) -> None:
    """Give the account an active subscription, as a completed checkout would."""
    from datetime import timedelta

    from sqlalchemy import select

    from app.accounts.models import User
    from app.billing.models import Subscription
    from app.db_types import utcnow
    from app.extensions import db

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        assert user is not None, email
        now = utcnow()
        db.session.add(
            Subscription(
                user_id=user.id,
                plan=plan,
                status="active",
                current_period_start=now - timedelta(days=30 - days_left),
                current_period_end=now + timedelta(days=days_left),
            )
        )
        db.session.commit()
