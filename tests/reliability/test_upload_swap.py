"""An accepted upload cannot be swapped afterwards: the bytes that train are the bytes ingest
checked.

A hostile owner completes an upload, lets ingest accept it, then PUTs other bytes to the same
upload URL. On the local backend the URL answers 403 with the reason once its item has left
"uploading" (completed, cancelled, refused, deleted). On S3 a presigned PUT stays valid until it
expires, so the PUT lands, but nothing reads that key any more: ingest checked a copy at a key
only the server writes, and the training worker's scratch copy (jobs.run_files.copy_dataset),
the thumbnail and the export hold the checked bytes.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from app.datasets.models import DatasetItem
from app.extensions import db, get_storage
from app.privacy.exports import build_export
from app.privacy.models import DataExport
from app.trainings.models import TrainingRun
from jobs.datasets import REPLACED_REASON, ingest_item
from jobs.run_files import copy_dataset
from tests.support.accounts import activate_plan, person_with_dataset
from tests.support.apps import s3_app
from tests.support.media_files import HOSTILE_SVG, noise_png_bytes
from tests.support.seaweedfs import SeaweedServer

Person = tuple[FlaskClient, str, int]  # (signed-in client, CSRF token, dataset id)
VALIDATED = noise_png_bytes((48, 48), seed=1)
SWAPPED = noise_png_bytes((640, 640), seed=2)  # a real PNG too, so only the key decides


def start(client: FlaskClient, token: str, dataset_id: int, name: str, size: int) -> Any:
    """Ask for upload targets as upload.js does."""
    response = client.post(
        f"/api/datasets/{dataset_id}/uploads",
        json={"filename": name, "size": size},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def complete(client: FlaskClient, token: str, dataset_id: int, item_id: int, **parts: Any) -> None:
    """Tell the app the bytes are there."""
    response = client.post(
        f"/api/datasets/{dataset_id}/uploads/{item_id}/complete",
        json=parts or {"etags": []},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["item"]["status"] == "uploaded"


def local_put(client: FlaskClient, url: str, data: bytes) -> Any:
    """PUT to a local-backend upload URL without cookies, as any script could."""
    return client.application.test_client().put(url.removeprefix("http://localhost"), data=data)


def ingest(app: Flask, item_id: int) -> DatasetItem:
    """Run the ingest job's work for one item."""
    with app.app_context():
        item = db.session.get(DatasetItem, item_id)
        assert item is not None
        ingest_item(item)
        db.session.refresh(item)
        db.session.expunge(item)
        return item


def training_copy(app: Flask, client: FlaskClient, token: str, dataset_id: int, tmp: Path) -> dict:
    """Start a run on the dataset and make the training worker's scratch copy of it."""
    started = client.post(
        "/api/runs",
        json={"dataset_id": dataset_id, "family": "tiny-sd", "preset": "character",
              "params": {"steps": 2, "rank": 4}},
        headers={"X-CSRFToken": token},
    )  # fmt: skip
    assert started.status_code == 201, started.get_json()
    with app.app_context():
        run = db.session.get(TrainingRun, started.get_json()["id"])
        assert run is not None
        assert copy_dataset(run, tmp / "data") == 1
    return {path.name: path.read_bytes() for path in (tmp / "data").iterdir()}


S3_PUT: dict[str, Any] = {"headers": {"Content-Type": "image/png"}, "timeout": 10}


def s3_upload(client: FlaskClient, token: str, dataset_id: int) -> tuple[str, int]:
    """Upload VALIDATED as cat.png straight to S3 and complete it: (PUT URL, item id)."""
    target = start(client, token, dataset_id, "cat.png", len(VALIDATED))
    url, item_id = target["urls"][0], target["item"]["id"]
    assert requests.put(url, data=VALIDATED, **S3_PUT).status_code == 200
    complete(client, token, dataset_id, item_id)
    return url, item_id


@pytest.fixture
def local_person(any_db_app: Flask) -> Person:
    """Ada on the Pro plan with an empty dataset, on the local backend."""
    person = person_with_dataset(any_db_app, "Swap")
    activate_plan(any_db_app, "ada@example.com", "pro")
    return person


def test_local_upload_url_refuses_bytes_once_the_upload_is_complete(
    any_db_app: Flask, local_person: Person, tmp_path: Path
) -> None:
    client, token, dataset_id = local_person
    target = start(client, token, dataset_id, "cat.png", len(VALIDATED))
    url, item_id = target["urls"][0], target["item"]["id"]
    assert local_put(client, url, VALIDATED).status_code == 200
    complete(client, token, dataset_id, item_id)

    swap = local_put(client, url, SWAPPED)  # before ingest has even run
    assert swap.status_code == 403
    assert "“cat.png” has already been uploaded" in swap.get_json()["error"]
    item = ingest(any_db_app, item_id)
    assert item.status == "ready" and (item.width, item.height) == (48, 48)
    swap = local_put(client, url, SWAPPED)
    assert swap.status_code == 403, swap.get_data(as_text=True)
    assert "this link takes no more bytes" in swap.get_json()["error"]

    assert training_copy(any_db_app, client, token, dataset_id, tmp_path) == {
        f"item-{item_id}.png": VALIDATED
    }
    with any_db_app.app_context():
        assert get_storage().stat(item.upload_key or "") is None  # deleted after ingest


def test_local_upload_urls_end_when_the_upload_is_cancelled_refused_or_deleted(
    any_db_app: Flask, local_person: Person
) -> None:
    client, token, dataset_id = local_person
    headers, api = {"X-CSRFToken": token}, f"/api/datasets/{dataset_id}/uploads"

    cancelled = start(client, token, dataset_id, "cancelled.png", len(VALIDATED))
    assert client.delete(f"{api}/{cancelled['key']}", headers=headers).status_code == 200
    refused = start(client, token, dataset_id, "drawing.png", len(HOSTILE_SVG))
    assert local_put(client, refused["urls"][0], HOSTILE_SVG).status_code == 200
    complete(client, token, dataset_id, refused["item"]["id"])
    assert ingest(any_db_app, refused["item"]["id"]).status == "rejected"
    deleted = start(client, token, dataset_id, "deleted.png", len(VALIDATED))
    assert local_put(client, deleted["urls"][0], VALIDATED).status_code == 200
    complete(client, token, dataset_id, deleted["item"]["id"])
    ingest(any_db_app, deleted["item"]["id"])
    assert client.post(
        f"/datasets/{dataset_id}/items/{deleted['item']['id']}/delete",
        data={"csrf_token": token},
    ).status_code == 302  # fmt: skip

    # On SQLite the refused item gets the cancelled item's id again (SQLite reuses the highest
    # id once its row is gone); its upload key is new and random, so the old URL cannot reach it.
    reasons = {}
    for name, target in (("cancelled", cancelled), ("refused", refused), ("deleted", deleted)):
        response = local_put(client, target["urls"][0], VALIDATED)
        assert response.status_code == 403, (name, response.get_data(as_text=True))
        reasons[name] = response.get_json()["error"]
    assert "This upload was cancelled or its file deleted" in reasons["cancelled"]
    assert "“drawing.png” was refused" in reasons["refused"]
    assert "This upload was cancelled or its file deleted" in reasons["deleted"]
    with any_db_app.app_context():
        assert list(get_storage().list("users/")) == []


def test_local_part_urls_refuse_bytes_once_the_upload_is_complete(
    any_db_app: Flask, local_person: Person, tmp_path: Path
) -> None:
    client, token, dataset_id = local_person
    noise = np.random.default_rng(3).integers(0, 256, (2400, 2400, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG", compress_level=0)
    big = buffer.getvalue()
    target = start(client, token, dataset_id, "big.png", len(big))
    assert target["method"] == "multipart" and len(target["urls"]) == 2
    size = target["part_size"]
    etags = []
    for number, url in enumerate(target["urls"]):
        response = local_put(client, url, big[number * size : (number + 1) * size])
        assert response.status_code == 200
        etags.append(response.headers["ETag"])
    complete(client, token, dataset_id, target["item"]["id"], etags=etags)

    swap = local_put(client, target["urls"][1], b"tail of something else")
    assert swap.status_code == 403
    assert "its upload has ended" in swap.get_json()["error"]
    assert ingest(any_db_app, target["item"]["id"]).status == "ready"
    copied = training_copy(any_db_app, client, token, dataset_id, tmp_path)
    assert copied == {f"item-{target['item']['id']}.png": big}


def test_s3_swap_after_ingest_never_reaches_training_thumbnails_or_exports(
    request: pytest.FixtureRequest,
    seaweedfs_s3: SeaweedServer,
    tmp_path: Path,
) -> None:
    with s3_app(request, seaweedfs_s3) as app:
        client, token, dataset_id = person_with_dataset(app, "Swap")
        activate_plan(app, "ada@example.com", "pro")
        url, item_id = s3_upload(client, token, dataset_id)
        item = ingest(app, item_id)
        assert item.status == "ready" and (item.width, item.height) == (48, 48)

        # The presigned URL is still valid (S3 cannot revoke it), so the PUT lands, but at a
        # key nothing reads: training gets the checked bytes,
        assert requests.put(url, data=SWAPPED, **S3_PUT).status_code == 200
        copied = training_copy(app, client, token, dataset_id, tmp_path)
        assert copied == {f"item-{item_id}.png": VALIDATED}
        with app.app_context():
            assert get_storage().get(item.upload_key or "") == SWAPPED
        # the thumbnail is the checked picture's,
        thumbnail = client.get(f"/datasets/{dataset_id}/items/{item_id}/thumbnail")
        picture = requests.get(thumbnail.headers["Location"], timeout=10).content
        assert Image.open(io.BytesIO(picture)).size == (48, 48)
        # and the export holds the checked bytes and not the swapped ones.
        assert client.post("/my-data/exports", data={"csrf_token": token}).status_code == 302
        with app.app_context():
            export = db.session.scalar(select(DataExport))
            assert export is not None and build_export(export.id) == "ready"
            archive = zipfile.ZipFile(io.BytesIO(get_storage().get(export.storage_key or "")))
        (inner_name,) = [n for n in archive.namelist() if n.startswith(f"datasets/{dataset_id}-")]
        dataset_zip = zipfile.ZipFile(io.BytesIO(archive.read(inner_name)))
        pictures = [name for name in dataset_zip.namelist() if not name.endswith(".txt")]
        assert len(pictures) == 1 and dataset_zip.read(pictures[0]) == VALIDATED


def test_s3_swap_between_completion_and_ingest_of_another_size_is_refused(
    request: pytest.FixtureRequest,
    seaweedfs_s3: SeaweedServer,
) -> None:
    with s3_app(request, seaweedfs_s3) as app:
        client, token, dataset_id = person_with_dataset(app, "Swap")
        url, item_id = s3_upload(client, token, dataset_id)
        # Bigger bytes than the size checked at completion (and counted against the allowance).
        assert requests.put(url, data=SWAPPED, **S3_PUT).status_code == 200

        item = ingest(app, item_id)
        assert item.status == "rejected" and item.reject_reason == REPLACED_REASON
        with app.app_context():
            assert [info.key for info in get_storage().list("users/")] == []
