"""Key rules, the download header, and choosing a backend from settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storage import (
    InvalidKey,
    LocalStorage,
    S3Storage,
    Storage,
    attachment_disposition,
    open_storage,
)
from tests.support.storage_backends import Backend

BAD_KEYS = [
    "",
    "/users/1/a.txt",
    "users/../etc/passwd",
    "users/1/..",
    "users//a.txt",
    "users/1/",
    "users/./a.txt",
    "users/1/a\nb.txt",
    "users/1/a\x00b",
    "users/1/a\x7fb",
    "users\\1\\a.txt",
    "/".join(["a" * 255] * 4) + "/bc",  # 1025 bytes
    "k/" + "é" * 128,  # a 256-byte segment
]

KEYED_CALLS: dict[str, Callable[[Storage, str], Any]] = {
    "put": lambda s, k: s.put(k, b"x"),
    "get": lambda s, k: s.get(k),
    "stat": lambda s, k: s.stat(k),
    "delete": lambda s, k: s.delete(k),
    "open_stream": lambda s, k: s.open_stream(k),
    "create_multipart": lambda s, k: s.create_multipart(k, "image/png"),
    "presign_put": lambda s, k: s.presign_put(k, "image/png", 60),
    "presign_download": lambda s, k: s.presign_download(k, 60, "a.png"),
}


def test_invalid_keys_are_rejected_before_any_request(backend: Backend) -> None:
    for key in BAD_KEYS:
        for name, call in KEYED_CALLS.items():
            with pytest.raises(InvalidKey):
                call(backend.storage, key)
                pytest.fail(f"{name} accepted {key!r}")
    assert list(backend.storage.list("")) == []


def test_longest_allowed_key_and_unicode_work(backend: Backend) -> None:
    longest = "/".join(["a" * 255] * 3 + ["a" * 254, "b"])  # 1024 bytes, segments at the cap
    backend.storage.put(longest, b"x")
    backend.storage.put("users/1/Grüße 日本.png", b"y")

    assert backend.storage.get(longest) == b"x"
    assert [i.key for i in backend.storage.list("users/1/")] == ["users/1/Grüße 日本.png"]


def test_prefix_operations_refuse_bad_or_empty_prefixes(backend: Backend) -> None:
    with pytest.raises(InvalidKey):
        backend.storage.delete_prefix("")  # would wipe the whole bucket
    with pytest.raises(InvalidKey):
        list(backend.storage.list("../"))
    with pytest.raises(ValueError):
        backend.storage.presign_download("users/1/a", 8 * 24 * 3600, "a")  # SigV4 max is 7 days


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("lora.safetensors", 'attachment; filename="lora.safetensors"'),
        (
            "résumé.txt",
            "attachment; filename=\"resume.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt",
        ),
        ('a"b.txt', "attachment; filename=\"a'b.txt\"; filename*=UTF-8''a%22b.txt"),
        ("a\r\nb;c.txt", 'attachment; filename="ab;c.txt"'),
        ("../../etc/passwd", 'attachment; filename=".. .. etc passwd"'),
        ("日本", "attachment; filename=\"download\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC"),
        ("50%.txt", "attachment; filename=\"50_.txt\"; filename*=UTF-8''50%25.txt"),
        ("\r\n", 'attachment; filename="download"'),
    ],
)
def test_attachment_disposition(filename: str, expected: str) -> None:
    assert attachment_disposition(filename) == expected


def test_open_storage_builds_local_from_plain_values(tmp_path: Path) -> None:
    storage = open_storage(
        {
            "backend": "local",
            "root": str(tmp_path / "objects"),
            "base_url": "http://127.0.0.1:5000/storage/local/",
            "secret": "a-secret-of-enough-length",
            "bucket": "",  # the other backend's settings may come along unset
            "endpoint_url": None,
        }
    )
    assert isinstance(storage, LocalStorage)
    assert isinstance(storage, Storage)
    assert storage.presign_download("a/b", 60, "b").startswith(
        "http://127.0.0.1:5000/storage/local/download/"
    )


def test_open_storage_builds_s3_from_plain_values() -> None:
    storage = open_storage(
        {
            "backend": "s3",
            "bucket": "attune",
            "endpoint_url": "http://minio.internal:9000",
            "public_endpoint_url": "https://files.attune.example",
            "access_key": "k",
            "secret_key": "s",
            "addressing_style": "path",
            "root": "",
        }
    )
    assert isinstance(storage, S3Storage)
    url = storage.presign_download("a/b", 60, "b")
    assert url.startswith("https://files.attune.example/attune/a/b?")


@pytest.mark.parametrize(
    "settings",
    [
        {"backend": "ftp"},
        {"root": "/tmp/x", "base_url": "http://x", "secret": "s" * 20},  # no backend
        {"backend": "s3"},  # no bucket
        {
            "backend": "local",
            "root": "/tmp/x",
            "base_url": "http://x",
            "secret": "s" * 20,
            "buckt": 1,
        },
        {"backend": "s3", "bucket": "b", "addressing_style": "sideways"},
    ],
)
def test_open_storage_refuses_incomplete_or_misspelt_settings(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        open_storage(settings)
