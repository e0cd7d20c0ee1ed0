"""What only the local backend has: signed tokens, the on-disk layout, atomic writes."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from storage import (
    InvalidKey,
    InvalidToken,
    LocalStorage,
    PayloadTooLarge,
    StorageError,
    TokenAction,
    TokenClaims,
    UploadNotFound,
)
from storage.local_tokens import TokenSigner
from tests.storage.local_http import LocalRoutesServer
from tests.support.storage_backends import LOCAL_SECRET

BASE_URL = "http://attune.test/storage/local"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def local(tmp_path: Path, clock: FakeClock) -> LocalStorage:
    return LocalStorage(tmp_path / "root", BASE_URL, LOCAL_SECRET, clock=clock)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_download_token_round_trip_and_expiry(local: LocalStorage, clock: FakeClock) -> None:
    local.put("users/1/a.txt", b"a")
    url = local.presign_download("users/1/a.txt", 60, "a.txt")
    assert url.startswith(f"{BASE_URL}/download/")

    claims = local.verify_token(token_of(url), TokenAction.DOWNLOAD)
    assert (claims.key, claims.filename, claims.action) == ("users/1/a.txt", "a.txt", "download")

    clock.now += 59
    local.verify_token(token_of(url), "download")
    clock.now += 1
    with pytest.raises(InvalidToken, match="expired"):
        local.verify_token(token_of(url), "download")


def test_tampered_or_foreign_tokens_are_rejected(local: LocalStorage, tmp_path: Path) -> None:
    token = token_of(local.presign_download("users/1/a.txt", 60, "a.txt"))
    payload, signature = token.split(".")
    other = token_of(local.presign_download("users/2/b.txt", 60, "b.txt"))
    forged_payload = base64.urlsafe_b64encode(
        json.dumps(["download", "users/2/secret.txt", None, None, 1_900_000_060, "a", None])
        .encode()
    ).rstrip(b"=").decode()  # fmt: skip
    stranger = LocalStorage(tmp_path / "other", BASE_URL, b"another-secret-of-32-bytes-000000")
    flipped_last = signature[:-1] + ("A" if signature[-1] != "A" else "B")

    for bad in [
        f"{forged_payload}.{signature}",
        f"{payload}.{other.split('.')[1]}",
        f"{payload}.{flipped_last}",
        f"{payload}x.{signature}",
        f"{payload}.{signature}=",
        f"{payload}.{signature}.{signature}",
        token_of(stranger.presign_download("users/1/a.txt", 60, "a.txt")),
        "",
        "not-a-token",
        "a" * 10_000,
    ]:
        with pytest.raises(InvalidToken):
            local.verify_token(bad, "download")
    with pytest.raises(InvalidToken, match="not download"):
        local.verify_token(
            token_of(local.presign_put("users/1/a.txt", "text/plain", 60)), "download"
        )


def test_tampered_tokens_get_403_over_http(backend_local: LocalStorage) -> None:
    backend_local.put("users/1/a.txt", b"secret")
    url = backend_local.presign_download("users/1/a.txt", 60, "a.txt")
    upload_url = backend_local.presign_put("users/1/b.txt", "text/plain", 60)

    assert requests.get(url[:-2] + "AA", timeout=10).status_code == 403
    assert (
        requests.put(url.replace("/download/", "/upload/"), data=b"x", timeout=10).status_code
        == 403
    )
    assert requests.get(upload_url.replace("/upload/", "/download/"), timeout=10).status_code == 403
    assert backend_local.stat("users/1/b.txt") is None


def test_part_tokens_hide_the_key_and_die_with_the_upload(local: LocalStorage) -> None:
    key = "users/1/datasets/2/items/3/original.mp4"
    upload_id = local.create_multipart(key, "video/mp4")
    token = token_of(local.presign_part(key, upload_id, 7, 600))

    assert b"users/1" not in base64.urlsafe_b64decode(token.split(".")[0] + "==")
    claims = local.verify_token(token, "upload")
    assert (claims.key, claims.upload_id, claims.part_number) == (key, upload_id, 7)

    local.abort_multipart(key, upload_id)
    with pytest.raises(InvalidToken):
        local.verify_token(token, "upload")


def test_put_tokens_name_an_upload_record_not_the_key(local: LocalStorage) -> None:
    key = "users/41/datasets/52/items/63/upload/original.png"
    token = token_of(local.presign_put(key, "image/png", 600))

    shown = base64.urlsafe_b64decode(token.split(".")[0] + "==")
    assert b"users" not in shown and b"41" not in shown and b"image/png" not in shown
    claims = local.verify_token(token, "upload")
    assert (claims.key, claims.content_type, claims.part_number) == (key, "image/png", None)
    local.write_upload(claims, io.BytesIO(b"png bytes"), max_bytes=100)
    assert local.get(key) == b"png bytes"
    assert local.stat(key).content_type == "image/png"  # type: ignore[union-attr]
    local.write_upload(claims, io.BytesIO(b"again"), max_bytes=100)  # as S3, until it lapses
    assert local.get(key) == b"again"
    # The record is no multipart upload: not listed, not completable, takes no parts.
    assert (local.root / f".multipart/single/{claims.upload_id}.json").exists()
    assert local.list_multipart_uploads("users/") == []
    with pytest.raises(UploadNotFound):
        local.complete_multipart(key, claims.upload_id or "", [])
    with pytest.raises(UploadNotFound):
        local.write_part(claims.upload_id or "", 1, io.BytesIO(b"x"), max_bytes=100)


def test_put_records_lapse_with_their_url_and_are_swept(
    local: LocalStorage, clock: FakeClock
) -> None:
    token = token_of(local.presign_put("users/1/a.png", "image/png", 60))
    upload_id = local.verify_token(token, "upload").upload_id
    record = local.root / f".multipart/single/{upload_id}.json"
    clock.now += 60
    with pytest.raises(InvalidToken, match="has ended"):
        local.verify_token(token, "upload")
    assert record.exists()
    local.list_multipart_uploads("")  # the hourly stale-upload sweep lists them
    assert not record.exists()


def test_put_urls_under_a_prefix_can_be_revoked_at_once(local: LocalStorage) -> None:
    mine = token_of(local.presign_put("users/7/items/2/upload/a.png", "image/png", 600))
    other = token_of(local.presign_put("users/70/items/2/upload/b.png", "image/png", 600))
    assert local.revoke_upload_urls("users/7/") == 1
    with pytest.raises(InvalidToken):
        local.verify_token(mine, "upload")
    assert local.verify_token(other, "upload").key.startswith("users/70/")
    assert len(list((local.root / ".multipart/single").glob("*.json"))) == 1


def test_upload_tokens_that_name_a_key_are_refused(local: LocalStorage, clock: FakeClock) -> None:
    # The format upload tokens had before upload records: signed, but naming the key itself.
    claims = TokenClaims(
        TokenAction.UPLOAD, "users/1/a.png", int(clock.now) + 600, content_type="image/png"
    )
    with pytest.raises(InvalidToken, match="malformed"):
        local.verify_token(TokenSigner(LOCAL_SECRET, clock).sign(claims), "upload")


def test_uploads_stop_at_max_bytes_and_leave_nothing(local: LocalStorage) -> None:
    upload_id = local.create_multipart("users/1/v.mp4", "video/mp4")
    with pytest.raises(PayloadTooLarge):
        local.write_part(upload_id, 1, io.BytesIO(b"x" * 11), max_bytes=10)
    with pytest.raises(PayloadTooLarge):
        local.write_object_from_stream("users/1/s.png", io.BytesIO(b"x" * 11), max_bytes=10)

    assert local.list_parts("users/1/v.mp4", upload_id) == []
    assert local.stat("users/1/s.png") is None
    assert list((local.root / ".tmp").iterdir()) == []
    part = local.write_part(upload_id, 1, io.BytesIO(b"x" * 10), max_bytes=10)
    assert (part.number, part.size, part.etag) == (1, 10, hashlib.md5(b"x" * 10).hexdigest())
    with pytest.raises(UploadNotFound):
        local.write_part("A" * 32, 1, io.BytesIO(b"x"), max_bytes=10)


def test_a_failed_write_keeps_the_old_object(local: LocalStorage) -> None:
    local.put("users/1/a.txt", b"old", content_type="text/plain")

    def broken() -> Iterator[bytes]:
        yield b"new but "
        raise OSError("client went away")

    class BrokenStream(io.RawIOBase):
        chunks = broken()

        def read(self, size: int = -1) -> bytes:
            return next(self.chunks)

    with pytest.raises(OSError, match="went away"):
        local.put("users/1/a.txt", BrokenStream())  # type: ignore[arg-type]

    assert local.get("users/1/a.txt") == b"old"
    assert local.stat("users/1/a.txt").content_type == "text/plain"  # type: ignore[union-attr]
    assert list((local.root / ".tmp").iterdir()) == []


def test_keys_stay_inside_root(local: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (local.root / "users").symlink_to(outside)

    for key in ("users/secret", ".multipart/x", ".meta/users", ".tmp/w-1"):
        with pytest.raises(InvalidKey):
            local.put(key, b"x")
    assert list(outside.iterdir()) == []


def test_an_object_and_a_prefix_cannot_share_a_name(local: LocalStorage) -> None:
    local.put("users/1/a", b"file")
    with pytest.raises(StorageError):
        local.put("users/1/a/b", b"x")
    local.put("users/2/a/b", b"x")
    with pytest.raises(StorageError):
        local.put("users/2/a", b"x")

    local.delete("users/2/a/b")
    local.put("users/2/a", b"now fine")  # empty folders are pruned on delete
    assert [i.key for i in local.list("users/")] == ["users/1/a", "users/2/a"]


def test_multipart_state_lives_under_dot_multipart(local: LocalStorage) -> None:
    upload_id = local.create_multipart("users/1/v.mp4", "video/mp4")
    folder = local.root / ".multipart" / upload_id
    record = json.loads((folder / "upload.json").read_text())
    assert record["key"] == "users/1/v.mp4" and "initiated" in record

    part = local.write_part(upload_id, 1, io.BytesIO(b"only part"), max_bytes=100)
    local.complete_multipart("users/1/v.mp4", upload_id, [part])

    assert not folder.exists()
    assert local.get("users/1/v.mp4") == b"only part"
    with pytest.raises(UploadNotFound):
        local.list_parts("users/1/other.mp4", local.create_multipart("users/1/v2.mp4"))


def test_stat_notices_files_changed_behind_its_back(local: LocalStorage) -> None:
    local.put("users/1/a.txt", b"one", content_type="text/plain")
    (local.root / "users/1/a.txt").write_bytes(b"changed")

    info = local.stat("users/1/a.txt")
    assert info is not None
    assert (info.size, info.etag) == (7, hashlib.md5(b"changed").hexdigest())


def test_short_secrets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LocalStorage(tmp_path, BASE_URL, b"short")


@pytest.fixture
def backend_local(local_routes: LocalRoutesServer, tmp_path: Path) -> Iterator[LocalStorage]:
    local_routes.storage = LocalStorage(tmp_path / "http", local_routes.base_url, LOCAL_SECRET)
    yield local_routes.storage
    local_routes.storage = None
