"""The embedded storage's two routes: a signed download is a private attachment while its owner
exists, a bad link is refused with the reason, and an upload link takes no bytes once there is
no upload in flight behind its key."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient

from app import object_keys
from app.extensions import get_storage
from tests.support.accounts import seed_user


def _path(url: str) -> str:
    """The path (and query) of a presigned URL, for the test client."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_a_signed_download_is_a_private_attachment_while_its_owner_exists(app: Flask) -> None:
    user_id = seed_user(app, "ada@example.com")
    key = object_keys.child(object_keys.export_prefix(user_id, 1), "attune.zip")
    gone = object_keys.child(object_keys.export_prefix(user_id + 1000, 1), "attune.zip")
    with app.app_context():
        storage = get_storage()
        storage.put(key, b"PK\x03\x04 export", "application/zip")
        storage.put(gone, b"PK\x03\x04 nobody's", "application/zip")
        url = storage.presign_download(key, 60, "my data.zip")
        missing = storage.presign_download(key + ".old", 60, "old.zip")
        ownerless = storage.presign_download(gone, 60, "theirs.zip")
    client = app.test_client()
    response = client.get(_path(url))
    assert response.status_code == 200
    assert response.data == b"PK\x03\x04 export"
    assert response.headers["Content-Type"] == "application/zip"
    assert response.headers["Content-Length"] == str(len(b"PK\x03\x04 export"))
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert "my data.zip" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "private, no-store"
    assert client.get(_path(missing)).status_code == 404
    assert client.get(_path(ownerless)).status_code == 404  # no such account: the link is dead


def test_a_bad_or_misused_link_is_refused_with_the_reason(app: Flask, client: FlaskClient) -> None:
    user_id = seed_user(app, "ada@example.com")
    key = object_keys.child(object_keys.export_prefix(user_id, 1), "attune.zip")
    with app.app_context():
        upload_url = get_storage().presign_put(key, "application/zip", 60)
    download_path = _path(upload_url).replace("/upload/", "/download/")
    for path in ("/storage/local/download/not-a-token", download_path):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "invalid or has expired" in response.get_data(as_text=True), path


def test_an_upload_link_without_an_upload_in_flight_takes_no_bytes(
    app: Flask, client: FlaskClient
) -> None:
    user_id = seed_user(app, "ada@example.com")
    key = object_keys.child(object_keys.item_prefix(user_id, 1, 1), "upload.png")
    with app.app_context():
        url = get_storage().presign_put(key, "image/png", 60)
    response = client.put(_path(url), data=b"12345")
    assert response.status_code == 403
    assert "cancelled or its file deleted" in response.get_data(as_text=True)
    with app.app_context():
        assert get_storage().stat(key) is None
    assert client.put("/storage/local/upload/not-a-token", data=b"1").status_code == 403
