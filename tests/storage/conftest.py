"""One behaviour suite, three backends: local files, S3 mocked by moto, a real SeaweedFS (the
session's `seaweedfs_s3`, from tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from storage import LocalStorage, S3Storage
from tests.storage.local_http import LocalRoutesServer
from tests.support.seaweedfs import SeaweedServer, seaweed_storage
from tests.support.storage_backends import BACKENDS, LOCAL_SECRET, Backend


@pytest.fixture(scope="session")
def local_routes() -> Iterator[LocalRoutesServer]:
    """An HTTP server doing the app's /download and /upload routes for a LocalStorage."""
    server = LocalRoutesServer()
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each backend in turn, empty: a fresh folder, mock or bucket per test."""
    if request.param == "local":
        routes: LocalRoutesServer = request.getfixturevalue("local_routes")
        routes.storage = LocalStorage(tmp_path / "objects", routes.base_url, LOCAL_SECRET)
        yield Backend("local", routes.storage)
        routes.storage = None
    elif request.param == "moto":
        with mock_aws():
            storage = S3Storage("attune-test", region="us-east-1", access_key="x", secret_key="y")
            storage.ensure_bucket()
            yield Backend("moto", storage, storage.client, checks_signatures=False)
    else:
        server: SeaweedServer = request.getfixturevalue("seaweedfs_s3")
        storage = seaweed_storage(server, f"t-{uuid.uuid4().hex[:16]}")
        storage.ensure_bucket()
        yield Backend("seaweedfs", storage, storage.client)
