"""Browser transfers through presigned URLs, driven with plain HTTP like a browser would."""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from storage import InvalidPart, PartRef, UploadNotFound
from tests.support.seaweedfs import SeaweedServer, seaweed_storage
from tests.support.storage_backends import Backend

MIB = 1024 * 1024


def test_multipart_upload_through_presigned_part_urls(backend: Backend) -> None:
    storage, key = backend.storage, "users/1/datasets/2/items/3/original.mp4"
    parts = [b"a" * (5 * MIB + 3), b"b" * (5 * MIB + 7), b"tail"]
    upload_id = storage.create_multipart(key, "video/mp4")
    assert [u.upload_id for u in storage.list_multipart_uploads("users/1/")] == [upload_id]

    etags = []
    for number, body in enumerate(parts, start=1):
        url = storage.presign_part(key, upload_id, number, expires_in=600)
        response = requests.put(url, data=body, timeout=30)
        assert response.status_code == 200, response.text
        etags.append(response.headers["ETag"])  # quoted, as browsers see it

    listed = storage.list_parts(key, upload_id)
    assert [(p.number, p.size) for p in listed] == [(1, 5 * MIB + 3), (2, 5 * MIB + 7), (3, 4)]
    assert [p.etag for p in listed] == [etag.strip('"') for etag in etags]

    storage.complete_multipart(key, upload_id, [PartRef(n, e) for n, e in enumerate(etags, 1)])

    assert storage.get(key) == b"".join(parts)
    info = storage.stat(key)
    assert info is not None and info.content_type == "video/mp4"
    assert info.etag.endswith("-3")  # S3's multipart ETag shape
    assert storage.list_multipart_uploads("users/1/") == []


def test_complete_rejects_wrong_etags_and_small_parts(backend: Backend) -> None:
    storage, key = backend.storage, "users/1/bad.bin"
    upload_id = storage.create_multipart(key, "application/octet-stream")
    etags = [
        requests.put(storage.presign_part(key, upload_id, n, 600), data=body, timeout=30).headers[
            "ETag"
        ]
        for n, body in ((1, b"x" * 1000), (2, b"y" * 1000))
    ]

    with pytest.raises(InvalidPart):
        storage.complete_multipart(key, upload_id, [PartRef(1, "0" * 32)])
    with pytest.raises(InvalidPart):  # every part but the last must be at least 5 MiB
        storage.complete_multipart(key, upload_id, [PartRef(1, etags[0]), PartRef(2, etags[1])])
    with pytest.raises(InvalidPart):
        storage.complete_multipart(key, upload_id, [PartRef(2, etags[1]), PartRef(1, etags[0])])
    assert storage.stat(key) is None


def test_abort_removes_the_upload(backend: Backend) -> None:
    storage, key = backend.storage, "users/1/big.zip"
    upload_id = storage.create_multipart(key, "application/zip")
    url = storage.presign_part(key, upload_id, 1, expires_in=600)
    assert requests.put(url, data=b"z" * 1024, timeout=30).status_code == 200

    storage.abort_multipart(key, upload_id)

    assert storage.list_multipart_uploads("") == []
    with pytest.raises(UploadNotFound):
        storage.list_parts(key, upload_id)
    if backend.name != "moto":  # moto raises a bare KeyError here instead of NoSuchUpload
        with pytest.raises(UploadNotFound):
            storage.complete_multipart(key, upload_id, [PartRef(1, "0" * 32)])
    storage.abort_multipart(key, upload_id)  # a sweeper may abort twice
    assert storage.stat(key) is None


def test_presigned_put_uploads_a_small_file_with_its_content_type(backend: Backend) -> None:
    storage = backend.storage
    url = storage.presign_put("users/1/photo.png", "image/png", expires_in=600)

    response = requests.put(url, data=b"\x89PNG...", headers={"Content-Type": "image/png"})

    assert response.status_code == 200, response.text
    assert storage.get("users/1/photo.png") == b"\x89PNG..."
    assert storage.stat("users/1/photo.png").content_type == "image/png"  # type: ignore[union-attr]


def test_presigned_download_is_an_attachment_with_a_safe_filename(backend: Backend) -> None:
    backend.storage.put("users/1/runs/9/lora.safetensors", b"weights")
    name = 'Café "final"\r\nSet-Cookie: x.safetensors'

    url = backend.storage.presign_download("users/1/runs/9/lora.safetensors", 300, name)
    response = requests.get(url, timeout=30)

    assert response.status_code == 200
    assert response.content == b"weights"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="Cafe ')
    assert "filename*=UTF-8''Caf%C3%A9%20%22final%22" in disposition
    assert "\r" not in disposition and "\n" not in disposition
    assert "Set-Cookie" not in response.headers


def test_presigned_download_expires(backend: Backend) -> None:
    backend.storage.put("users/1/short.txt", b"soon gone")
    # Expiry counts from the start of the signing second (X-Amz-Date has whole seconds), so a
    # 2-second URL lives between 1 and 2 seconds on every backend.
    signed_at = time.monotonic()
    url = backend.storage.presign_download("users/1/short.txt", 2, "short.txt")
    assert requests.get(url, timeout=30).status_code == 200

    time.sleep(max(0.0, signed_at + 2.1 - time.monotonic()))
    late = requests.get(url, timeout=30)

    if backend.checks_signatures:
        assert late.status_code == 403  # SeaweedFS enforces X-Amz-Expires like AWS
    else:
        assert late.status_code == 200  # moto's in-process mock ignores expiry


def test_presigned_put_refuses_another_content_type(seaweedfs_s3: SeaweedServer) -> None:
    storage = seaweed_storage(seaweedfs_s3, "content-type-check")
    storage.ensure_bucket()
    url = storage.presign_put("users/1/photo.png", "image/png", expires_in=600)

    response = requests.put(url, data=b"<html>", headers={"Content-Type": "text/html"})

    assert response.status_code == 403  # Content-Type is part of the signature
    assert storage.stat("users/1/photo.png") is None


def test_public_endpoint_signs_urls_for_the_browser_host(seaweedfs_s3: SeaweedServer) -> None:
    # The server talks to 127.0.0.1; browsers are told "localhost", a different Host header.
    public = seaweedfs_s3.endpoint_url.replace("127.0.0.1", "localhost")
    storage = seaweed_storage(seaweedfs_s3, "public-endpoint", public_endpoint_url=public)
    storage.ensure_bucket()
    storage.put("users/1/a.txt", b"via the public name")

    url = storage.presign_download("users/1/a.txt", 60, "a.txt")

    assert urlsplit(url).netloc == urlsplit(public).netloc
    assert requests.get(url, timeout=30).content == b"via the public name"


def test_set_cors_lets_the_app_origin_put_and_read_etag(seaweedfs_s3: SeaweedServer) -> None:
    storage = seaweed_storage(seaweedfs_s3, "cors-check")
    storage.ensure_bucket()
    storage.ensure_bucket()  # idempotent

    storage.set_cors(["https://attune.example"])

    rules = storage.client.get_bucket_cors(Bucket="cors-check")["CORSRules"]
    assert rules[0]["AllowedOrigins"] == ["https://attune.example"]
    assert "PUT" in rules[0]["AllowedMethods"] and rules[0]["ExposeHeaders"] == ["ETag"]


def test_copies_past_the_single_copy_limit_go_in_parts(seaweedfs_s3: SeaweedServer) -> None:
    # S3 copies at most 5 GiB in one request; lowering the limit takes the part-by-part path
    # (UploadPartCopy) that a larger object would, here on a real S3 server.
    storage = seaweed_storage(
        seaweedfs_s3, f"t-{uuid.uuid4().hex[:16]}", single_copy_limit=6 * 1024 * 1024
    )
    storage.ensure_bucket()
    payload = bytes(range(256)) * (13 * 4096)  # 13 MiB: three parts of at most 5 MiB
    storage.put("users/1/upload/clip.mp4", payload, content_type="video/mp4")

    storage.copy("users/1/upload/clip.mp4", "users/1/accepted/clip.mp4")

    assert storage.get("users/1/accepted/clip.mp4") == payload
    info = storage.stat("users/1/accepted/clip.mp4")
    assert info is not None and info.etag.endswith("-3") and info.content_type == "video/mp4"
