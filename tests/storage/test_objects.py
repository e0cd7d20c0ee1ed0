"""Storing, reading, listing and deleting objects, the same on every backend."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from storage import ObjectNotFound
from tests.support.storage_backends import Backend

MANY = 1005  # more than one S3 page (1000) and one DeleteObjects batch (1000)


def test_put_get_stat_delete_round_trip(backend: Backend) -> None:
    storage = backend.storage
    storage.put("users/1/a.txt", b"hello", content_type="text/plain")

    assert storage.get("users/1/a.txt") == b"hello"
    info = storage.stat("users/1/a.txt")
    assert info is not None
    assert (info.key, info.size, info.content_type) == ("users/1/a.txt", 5, "text/plain")
    assert info.etag == "5d41402abc4b2a76b9719d911017c592"  # md5, as S3 gives single PUTs
    assert abs(info.last_modified - datetime.now(UTC)) < timedelta(minutes=5)

    storage.delete("users/1/a.txt")
    assert storage.stat("users/1/a.txt") is None
    with pytest.raises(ObjectNotFound):
        storage.get("users/1/a.txt")
    storage.delete("users/1/a.txt")  # deleting twice is fine


def test_put_replaces_and_accepts_streams_and_empty_objects(backend: Backend) -> None:
    storage = backend.storage
    storage.put("k/obj", b"first")
    storage.put("k/obj", io.BytesIO(b"second, from a stream"), content_type="image/png")
    storage.put("k/empty", b"")

    assert storage.get("k/obj") == b"second, from a stream"
    assert storage.stat("k/obj").content_type == "image/png"  # type: ignore[union-attr]
    assert storage.get("k/empty") == b""


def test_missing_objects(backend: Backend, tmp_path: Path) -> None:
    storage = backend.storage
    assert storage.stat("nope/x") is None
    with pytest.raises(ObjectNotFound):
        storage.get("nope/x")
    with pytest.raises(ObjectNotFound):
        storage.open_stream("nope/x")
    with pytest.raises(ObjectNotFound):
        storage.download_file("nope/x", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_upload_file_and_download_file_large_enough_for_multipart(
    backend: Backend, tmp_path: Path
) -> None:
    # 9 MiB crosses boto3's 8 MiB multipart threshold, so S3 backends upload in parts.
    payload = bytes(range(256)) * (9 * 4096)
    source, target = tmp_path / "lora.safetensors", tmp_path / "back.safetensors"
    source.write_bytes(payload)

    backend.storage.upload_file("runs/7/lora.safetensors", source, "application/octet-stream")
    backend.storage.download_file("runs/7/lora.safetensors", target)

    assert target.read_bytes() == payload
    info = backend.storage.stat("runs/7/lora.safetensors")
    assert info is not None and info.size == len(payload)


def test_open_stream_yields_chunks_and_closes(backend: Backend) -> None:
    payload = b"0123456789" * 1000
    backend.storage.put("s/obj", payload)

    with backend.storage.open_stream("s/obj", chunk_size=4096) as stream:
        chunks = list(stream)
    assert b"".join(chunks) == payload
    assert max(len(chunk) for chunk in chunks) <= 4096

    early = backend.storage.open_stream("s/obj")
    assert next(early)
    early.close()  # stopping half-way releases the file or connection


def test_list_is_sorted_paginated_and_prefix_scoped(backend: Backend) -> None:
    storage = backend.storage
    _put_many(backend, "users/1/many/", MANY)
    storage.put("users/1/manyother", b"x")
    storage.put("users/2/many/0", b"x")

    listed = list(storage.list("users/1/many/"))

    assert len(listed) == MANY
    assert [info.key for info in listed] == sorted(f"users/1/many/{i:05d}" for i in range(MANY))
    assert all(info.size == 1 and info.content_type is None for info in listed)
    assert {info.key for info in storage.list("users/")} >= {"users/1/manyother", "users/2/many/0"}
    assert [info.key for info in storage.list("users/1/manyo")] == ["users/1/manyother"]
    assert list(storage.list("nothing/here/")) == []


def test_delete_prefix_removes_everything_under_it_in_batches(backend: Backend) -> None:
    storage = backend.storage
    _put_many(backend, "users/3/", MANY)
    storage.put("users/30/keep", b"x")
    upload_id = storage.create_multipart("users/3/unfinished.mp4", "video/mp4")
    batch_sizes = _watch_delete_batches(backend)

    removed = storage.delete_prefix("users/3/")

    assert removed == MANY
    assert list(storage.list("users/3/")) == []
    assert storage.get("users/30/keep") == b"x"
    assert upload_id not in {u.upload_id for u in storage.list_multipart_uploads("users/3/")}
    if backend.is_s3:
        assert batch_sizes and max(batch_sizes) <= 1000 and sum(batch_sizes) == MANY
    assert storage.delete_prefix("users/3/") == 0


def test_delete_removes_every_version_on_a_versioned_bucket(backend: Backend) -> None:
    if not backend.is_s3:
        pytest.skip("the local backend keeps no versions")
    client, bucket = backend.s3_client, backend.storage.bucket  # type: ignore[attr-defined]
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"v1", b"v2", b"v3"):
        backend.storage.put("users/4/model.safetensors", body)
    backend.storage.put("users/4/model.safetensors.json", b"sidecar")
    client.delete_object(Bucket=bucket, Key="users/4/old")  # a bare delete marker
    assert len(_versions(client, bucket, "users/4/model.safetensors")) == 3

    backend.storage.delete("users/4/model.safetensors")

    assert _versions(client, bucket, "users/4/model.safetensors") == []
    assert backend.storage.get("users/4/model.safetensors.json") == b"sidecar"

    assert backend.storage.delete_prefix("users/4/") == 1
    listing = client.list_object_versions(Bucket=bucket, Prefix="users/4/")
    assert listing.get("Versions", []) == [] and listing.get("DeleteMarkers", []) == []


def _versions(client: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    listing = client.list_object_versions(Bucket=bucket, Prefix=key)
    entries = listing.get("Versions", []) + listing.get("DeleteMarkers", [])
    return [entry for entry in entries if entry["Key"] == key]


def _put_many(backend: Backend, prefix: str, count: int) -> None:
    # Parallel puts keep the real-server runs short; every backend is safe for this.
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda i: backend.storage.put(f"{prefix}{i:05d}", b"x"), range(count)))


def _watch_delete_batches(backend: Backend) -> list[int]:
    sizes: list[int] = []
    if backend.is_s3:

        def record(params: dict[str, Any], **_: Any) -> None:
            sizes.append(len(params["Delete"]["Objects"]))

        backend.s3_client.meta.events.register("provide-client-params.s3.DeleteObjects", record)
    return sizes


def test_copy_keeps_bytes_and_type_and_stays_apart_from_its_source(backend: Backend) -> None:
    storage = backend.storage
    storage.put("users/1/upload/a.png", b"validated bytes", content_type="image/png")
    storage.copy("users/1/upload/a.png", "users/1/accepted/a.png")
    storage.put("users/1/upload/a.png", b"swapped later", content_type="image/png")

    assert storage.get("users/1/accepted/a.png") == b"validated bytes"
    info = storage.stat("users/1/accepted/a.png")
    assert info is not None and info.content_type == "image/png"
    storage.copy("users/1/upload/a.png", "users/1/accepted/a.png")  # replaces the target
    assert storage.get("users/1/accepted/a.png") == b"swapped later"
    with pytest.raises(ObjectNotFound):
        storage.copy("users/1/upload/missing.png", "users/1/accepted/b.png")
    assert storage.stat("users/1/accepted/b.png") is None
