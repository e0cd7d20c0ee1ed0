"""Object storage that answers 500/503, drops connections or never answers.

The app talks to a real SeaweedFS S3 gateway through tests/reliability/fault_proxy.py. Short
bursts of faults are retried (boto3's standard mode, 3 attempts) and the work completes; a
lasting outage fails cleanly (503 to the browser, a failed job that can run again) and never
leaves a row pointing at an object that is not there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.datasets.models import Dataset, DatasetItem
from app.extensions import db, get_storage
from app.privacy.exports import build_export
from app.privacy.models import DataExport, DeletionReceipt
from app.privacy.services import run_requested_deletion
from jobs.datasets import ingest_item
from storage import S3Storage, StorageError
from tests.reliability.fault_proxy import FaultProxy
from tests.support.accounts import person_with_dataset
from tests.support.apps import running_app
from tests.support.media_files import noise_png_bytes
from tests.support.seaweedfs import SeaweedServer

MB = 1024 * 1024
READ_TIMEOUT_S = 2


@pytest.fixture
def proxy(seaweedfs_s3: SeaweedServer) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the test SeaweedFS."""
    server = FaultProxy(seaweedfs_s3.endpoint_url)
    yield server
    server.stop()


@pytest.fixture
def s3_app(
    request: pytest.FixtureRequest,
    seaweedfs_s3: SeaweedServer,
    proxy: FaultProxy,
) -> Iterator[Flask]:
    """The app on a fresh bucket, reaching S3 only through the proxy; reads time out after 2 s
    (the default is 8 s) so a hung answer is quick to test."""
    overrides = {
        "storage_backend": "s3",
        "s3_bucket": f"attune-{uuid.uuid4().hex[:12]}",
        "s3_endpoint_url": proxy.url,
        "s3_access_key_id": seaweedfs_s3.access_key,
        "s3_secret_access_key": seaweedfs_s3.secret_key,
        "s3_addressing_style": "path",
        "s3_connect_timeout_s": 2,
        "s3_read_timeout_s": READ_TIMEOUT_S,
    }
    with running_app(request, "sqlite", overrides) as application:
        with application.app_context():
            storage = get_storage()
            assert isinstance(storage, S3Storage)
            storage.ensure_bucket()
        yield application


@pytest.fixture
def person(s3_app: Flask) -> tuple[FlaskClient, str, int]:
    """(signed-in client, CSRF token, dataset id)."""
    return person_with_dataset(s3_app, "Faults")


def dangling(app: Flask) -> list[str]:
    """Keys that a row names but storage does not hold."""
    missing = []
    with app.app_context():
        storage = get_storage()
        db.session.expire_all()
        for item in db.session.scalars(select(DatasetItem)):
            keys = [item.storage_key, item.thumbnail_key] if item.status == "ready" else []
            if item.status == "uploaded":
                keys = [item.upload_key]
            missing += [key for key in keys if key and storage.stat(key) is None]
        for export in db.session.scalars(select(DataExport).where(DataExport.status == "ready")):
            if export.storage_key and storage.stat(export.storage_key) is None:
                missing.append(export.storage_key)
    return missing


def test_uploads_and_ingest_ride_out_faults_and_fail_cleanly_when_they_last(
    s3_app: Flask, proxy: FaultProxy, person: tuple[FlaskClient, str, int]
) -> None:
    client, token, dataset_id = person
    headers = {"X-CSRFToken": token}
    api = f"/api/datasets/{dataset_id}/uploads"

    # Starting a multipart upload (a server-side S3 call) through two 500s, then aborting it
    # through two more.
    proxy.inject("500", "POST", "?uploads", count=2)
    big = client.post(api, json={"filename": "big.png", "size": 20 * MB}, headers=headers)
    assert big.status_code == 201 and big.get_json()["method"] == "multipart"
    proxy.inject("503", "DELETE", "uploadId=", count=2)
    item_id = big.get_json()["item"]["id"]
    assert client.delete(f"{api}/{item_id}", headers=headers).status_code == 200
    assert len(proxy.injected()) == 4

    # A single PUT, completion through failing HEADs, ingest through failing and hung GETs.
    def single(name: str) -> int:
        data = noise_png_bytes((64, 64), seed=len(name))
        target = client.post(api, json={"filename": name, "size": len(data)}, headers=headers)
        url, kind = target.get_json()["urls"][0], target.get_json()["content_type"]
        put = requests.put(url, data=data, headers={"Content-Type": kind}, timeout=30)
        assert put.status_code == 200, put.text
        return int(target.get_json()["item"]["id"])

    first = single("a.png")
    proxy.inject("500", "HEAD", count=2)
    done = client.post(f"{api}/{first}/complete", json={"etags": []}, headers=headers)
    assert done.status_code == 200, done.get_json()
    proxy.inject("500", "GET", f"/items/{first}/", count=1)
    proxy.inject("hang", "GET", f"/items/{first}/", count=1, hang_s=4)
    proxy.inject("reset", "PUT", "thumbnail", count=1)
    with s3_app.app_context():
        item = db.session.get(DatasetItem, first)
        assert item is not None and ingest_item(item) == "ready"
    assert {s.fault for s in proxy.injected()} >= {"500", "503", "hang", "reset"}

    # A lasting outage: completion answers 503 (not a traceback) and can be retried;
    # ingest fails as a job (the item waits as "uploaded") and succeeds when run again.
    second = single("b.png")
    proxy.inject("500", "HEAD", count=50)
    refused = client.post(f"{api}/{second}/complete", json={"etags": []}, headers=headers)
    assert refused.status_code == 503 and "error" in refused.get_json()
    proxy.clear()
    again = client.post(f"{api}/{second}/complete", json={"etags": []}, headers=headers)
    assert again.status_code == 200
    proxy.inject("500", "GET", f"/items/{second}/", count=50)
    with s3_app.app_context():
        item = db.session.get(DatasetItem, second)
        assert item is not None
        with pytest.raises(StorageError):
            ingest_item(item)
        db.session.rollback()
        assert db.session.get(DatasetItem, second).status == "uploaded"  # type: ignore[union-attr]
        proxy.clear()
        assert ingest_item(db.session.get(DatasetItem, second)) == "ready"  # type: ignore[arg-type]
    assert dangling(s3_app) == []


def test_exports_and_deletions_retry_and_resume(
    s3_app: Flask, proxy: FaultProxy, person: tuple[FlaskClient, str, int]
) -> None:
    client, token, dataset_id = person
    with s3_app.app_context():
        dataset = db.session.get(Dataset, dataset_id)
        assert dataset is not None
        for n in range(3):
            key = f"{dataset.storage_prefix()}items/{n}/original.png"
            get_storage().put(key, noise_png_bytes(seed=n), "image/png")
            db.session.add(DatasetItem(dataset_id=dataset_id, filename=f"{n}.png", status="ready",
                                       content_type="image/png", size_bytes=100, storage_key=key,
                                       thumbnail_key=key))  # fmt: skip
        db.session.commit()

    # An export through failing reads and writes is built; one through a lasting outage is
    # marked failed with no key, and the next request works.
    assert client.post("/my-data/exports", data={"csrf_token": token}).status_code == 302
    proxy.inject("500", "GET", "/items/", count=2)
    proxy.inject("503", "PUT", "/exports/", count=2)
    with s3_app.app_context():
        export = db.session.scalar(select(DataExport))
        assert export is not None and build_export(export.id) == "ready"
        first_export = export.id
    assert client.post("/my-data/exports", data={"csrf_token": token}).status_code == 302
    proxy.inject("500", "PUT", "/exports/", count=50)
    with s3_app.app_context():
        export = db.session.scalars(select(DataExport).order_by(DataExport.id.desc())).first()
        assert export is not None and export.id != first_export
        with pytest.raises(StorageError):
            build_export(export.id)
        db.session.expire_all()
        assert export.status == "failed" and export.storage_key is None
    proxy.clear()
    assert dangling(s3_app) == []

    # Deleting the dataset now: a lasting outage leaves the receipt to be resumed; once storage
    # is back the same job finishes, and nothing of the dataset remains anywhere.
    form = {"csrf_token": token, "scope": "dataset", "target_id": str(dataset_id)}
    assert client.post("/my-data/delete", data=form).status_code == 302
    proxy.inject("500", "POST", "?delete", count=50)
    with s3_app.app_context():
        receipt = db.session.scalar(select(DeletionReceipt))
        assert receipt is not None
        with pytest.raises(StorageError):
            run_requested_deletion(receipt.id)
        db.session.rollback()
        assert dangling(s3_app) == []  # rows and objects still agree
        proxy.clear()
        proxy.inject("500", "GET", "versions", count=2)
        proxy.inject("503", "POST", "?delete", count=2)
        assert run_requested_deletion(receipt.id) == "done"
        assert db.session.get(Dataset, dataset_id) is None
        left = [info.key for info in get_storage().list("users/")]
        assert left and all("/exports/" in key for key in left), left  # only the export
    assert {s.fault for s in proxy.injected()} == {"500", "503"}
    assert dangling(s3_app) == []


def test_storage_that_hangs_gets_a_503_well_before_the_web_timeout(
    s3_app: Flask, proxy: FaultProxy, person: tuple[FlaskClient, str, int]
) -> None:
    client, token, dataset_id = person
    api = f"/api/datasets/{dataset_id}/uploads"
    proxy.inject("hang", "POST", "?uploads", count=50, hang_s=20)
    started = time.monotonic()
    hung = client.post(api, json={"filename": "big.png", "size": 20 * MB},
                       headers={"X-CSRFToken": token})  # fmt: skip
    waited = time.monotonic() - started
    assert hung.status_code == 503 and "error" in hung.get_json()
    # Three attempts of one read timeout each, plus boto3's short back-off between them.
    attempts = len([s for s in proxy.injected() if s.fault == "hang"])
    assert attempts == 3 and waited < 3 * READ_TIMEOUT_S + 4, (attempts, waited)
    with s3_app.app_context():
        assert db.session.scalars(select(DatasetItem)).all() == []  # no half-made upload row
    proxy.clear()
    again = client.post(api, json={"filename": "big.png", "size": 20 * MB},
                        headers={"X-CSRFToken": token})  # fmt: skip
    assert again.status_code == 201
