"""The app under test: its settings, a migrated database per backend, and `running_app`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from redis import Redis

if TYPE_CHECKING:
    from tests.support.seaweedfs import SeaweedServer

DATABASES = ("sqlite", "postgres")


def migrated_url(request: pytest.FixtureRequest, kind: str, cache: dict[str, str]) -> str:
    """The URL of the `kind` database, migrated to head on first use and then remembered."""
    if kind in cache:
        return cache[kind]
    if kind == "sqlite":
        path = request.getfixturevalue("tmp_path_factory").mktemp("sqlite") / "attune.db"
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_server").create_database("attune_test")
    from flask_migrate import upgrade

    from app import create_app

    app = create_app(settings_overrides(request, url))
    with app.app_context():
        upgrade()
    cache[kind] = url
    return url


def settings_overrides(request: pytest.FixtureRequest, database_url: str) -> dict[str, Any]:
    """Settings for a test app on `database_url`, pointed at the run's Redis and SMTP servers."""
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

    url = migrated_url(request, kind, request.getfixturevalue("database_urls"))
    overrides = {**settings_overrides(request, url), **(extra or {})}
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


@contextmanager
def s3_app(request: pytest.FixtureRequest, server: SeaweedServer, **extra: Any) -> Iterator[Flask]:
    """The app storing into a fresh bucket on the test SeaweedFS."""
    from app.extensions import get_storage
    from storage import S3Storage

    overrides = {
        "storage_backend": "s3",
        "s3_bucket": f"attune-{uuid.uuid4().hex[:12]}",
        "s3_endpoint_url": server.endpoint_url,
        "s3_access_key_id": server.access_key,
        "s3_secret_access_key": server.secret_key,
        "s3_addressing_style": "path",
        **extra,
    }
    with running_app(request, "sqlite", overrides) as app:
        with app.app_context():
            storage = get_storage()
            assert isinstance(storage, S3Storage)
            storage.ensure_bucket()
        yield app
