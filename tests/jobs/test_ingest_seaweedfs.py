"""Uploads straight to a real S3 server (SeaweedFS) through the app's presigned URLs: a large
clip in parts with a failed part retried, the quota refused before presigning, and tampered or
expired requests refused by the server itself."""

from __future__ import annotations

import http.client
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from app.datasets.models import DatasetItem
from app.extensions import db, get_storage
from jobs.datasets import ingest_item
from tests.support.apps import s3_app
from tests.support.datasets import create_dataset
from tests.support.media_files import clip_file, png_bytes
from tests.support.seaweedfs import SeaweedServer
from tests.support.web import api_headers, sign_up

MB = 1024 * 1024


@pytest.fixture(scope="session")
def big_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 6-second 1280x720 MP4 of noise at a very high bitrate: over 50 MB."""
    path = clip_file(
        tmp_path_factory.mktemp("clips") / "big.mp4",
        frames=144,
        size=(1280, 720),
        fps=24,
        bit_rate=400_000_000,
    )
    assert path.stat().st_size > 50 * MB
    return path


def _signed_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert sign_up(client).status_code == 302
    return client


def _put_cut_off(url: str, body: bytes) -> None:
    """Start a PUT, send half the body and drop the connection, as a failing network does."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.putrequest("PUT", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    connection.send(body[: len(body) // 2])
    connection.close()


def test_large_clip_in_parts_with_a_retried_part(
    request: pytest.FixtureRequest,
    seaweedfs_s3: SeaweedServer,
    big_clip: Path,
) -> None:
    data = big_clip.read_bytes()
    with s3_app(request, seaweedfs_s3) as app:
        client = _signed_in(app)
        headers = api_headers(client)
        dataset_id = create_dataset(client)
        base = f"/api/datasets/{dataset_id}/uploads"
        started = client.post(
            base, json={"filename": "run.mp4", "size": len(data)}, headers=headers
        )
        assert started.status_code == 201, started.get_json()
        target = started.get_json()
        assert target["method"] == "multipart" and target["uploadId"]
        item_url, part_size = f"{base}/{target['key']}", target["part_size"]
        chunks = [data[i : i + part_size] for i in range(0, len(data), part_size)]
        assert len(chunks) >= 4

        etags = {}
        for number, chunk in enumerate(chunks, start=1):
            url = client.get(f"{item_url}/parts/{number}").get_json()["url"]
            assert url.startswith(seaweedfs_s3.endpoint_url)  # bytes go straight to storage
            if number == 2:
                _put_cut_off(url, chunk)  # the first try of part 2 fails mid-way...
                listed = client.get(f"{item_url}/parts").get_json()["parts"]
                assert 2 not in [p["PartNumber"] for p in listed]
                url = client.get(f"{item_url}/parts/{number}").get_json()[
                    "url"
                ]  # ...and is retried
            response = requests.put(url, data=chunk, timeout=60)
            assert response.status_code == 200, response.text
            etags[number] = response.headers["ETag"]

        listed = client.get(f"{item_url}/parts").get_json()["parts"]
        assert [(p["PartNumber"], p["Size"]) for p in listed] == [
            (n, len(c)) for n, c in enumerate(chunks, start=1)
        ]
        parts = [{"PartNumber": n, "ETag": e} for n, e in etags.items()]
        done = client.post(f"{item_url}/complete", json={"parts": parts}, headers=headers)
        assert done.status_code == 200, done.get_json()
        assert done.get_json()["item"]["status"] == "uploaded"

        with app.app_context():
            item = db.session.get(DatasetItem, int(target["key"]))
            assert item is not None
            assert ingest_item(item) == "ready", item.reject_reason
            assert (item.width, item.height, item.duration_s) == (1280, 720, 6.0)
        items = client.get(f"/api/datasets/{dataset_id}/items").get_json()["items"]
        assert [(i["status"], i["kind"]) for i in items] == [("ready", "video")]
        thumbnail = client.get(items[0]["thumbnail"])
        assert thumbnail.status_code == 302
        poster = requests.get(thumbnail.headers["Location"], timeout=10)
        assert poster.status_code == 200 and poster.content[8:12] == b"WEBP"


def test_upload_over_the_quota_is_refused_before_presigning(
    request: pytest.FixtureRequest,
    seaweedfs_s3: SeaweedServer,
) -> None:
    with s3_app(request, seaweedfs_s3, free_storage_mb=100) as app:
        client = _signed_in(app)
        dataset_id = create_dataset(client)
        response = client.post(
            f"/api/datasets/{dataset_id}/uploads",
            json={"filename": "long.mp4", "size": 150 * MB},
            headers=api_headers(client),
        )
        assert response.status_code == 422
        assert "does not fit" in response.get_json()["error"]
        assert "100 MB" in response.get_json()["error"]
        assert client.get(f"/api/datasets/{dataset_id}/items").get_json()["items"] == []
        with app.app_context():
            assert get_storage().list_multipart_uploads("") == []
            assert list(get_storage().list("")) == []


def test_tampered_or_expired_requests_are_refused_by_storage(
    request: pytest.FixtureRequest,
    seaweedfs_s3: SeaweedServer,
) -> None:
    data = png_bytes()
    with s3_app(request, seaweedfs_s3, upload_url_expiry_s=2) as app:
        client = _signed_in(app)
        dataset_id = create_dataset(client)
        target = client.post(
            f"/api/datasets/{dataset_id}/uploads",
            json={"filename": "a.png", "size": len(data)},
            headers=api_headers(client),
        ).get_json()
        signed_at = time.monotonic()
        url = target["urls"][0]
        put = {"data": data, "headers": {"Content-Type": "image/png"}, "timeout": 10}

        signature = url[url.index("X-Amz-Signature=") :]
        forged = url.replace(
            signature, signature[:-4] + ("0000" if signature[-4:] != "0000" else "1111")
        )
        assert requests.put(forged, **put).status_code == 403
        other_key = url.replace(f"/items/{target['key']}/", f"/items/{int(target['key']) + 1}/")
        assert requests.put(other_key, **put).status_code == 403
        time.sleep(max(0.0, signed_at + 3.1 - time.monotonic()))
        assert requests.put(url, **put).status_code == 403  # expired
        with app.app_context():
            assert list(get_storage().list("")) == []
