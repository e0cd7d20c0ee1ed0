"""Datasets: creation, upload targets, completion checks, and isolation between people."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.datasets.models import DatasetItem
from app.datasets.uploads import MAX_UNFINISHED_UPLOADS
from app.extensions import db
from tests.support.datasets import create_dataset, start_upload
from tests.support.web import api_headers, csrf_token


def test_upload_goes_to_a_presigned_url_and_completes(signed_in: FlaskClient) -> None:
    dataset_id = create_dataset(signed_in)
    response = start_upload(signed_in, dataset_id, {"filename": "a.png", "size": 5})
    assert response.status_code == 201
    target = response.get_json()
    assert target["method"] == "single" and len(target["urls"]) == 1
    # A page that reloads mid-upload asks again for its item: the same one, a fresh URL.
    item_url = f"/api/datasets/{dataset_id}/uploads/{target['item']['id']}"
    again = signed_in.get(f"{item_url}/target")
    assert again.status_code == 200
    assert again.get_json()["item"] == target["item"] and again.get_json()["method"] == "single"
    url = again.get_json()["urls"][0].removeprefix("http://localhost")
    put = signed_in.put(url, data=b"12345")
    assert put.status_code == 200 and put.headers["ETag"]
    done = signed_in.post(
        f"/api/datasets/{dataset_id}/uploads/{target['item']['id']}/complete",
        json={"etags": []},
        headers=api_headers(signed_in),
    )
    assert done.status_code == 200
    assert done.get_json()["item"]["status"] == "uploaded"
    finished = signed_in.get(f"{item_url}/target")
    assert finished.status_code == 422 and "already uploaded" in finished.get_json()["error"]
    assert signed_in.get(f"/api/datasets/{dataset_id}/uploads/999/target").status_code == 404


def test_large_files_get_multipart_part_urls(signed_in: FlaskClient) -> None:
    dataset_id = create_dataset(signed_in)
    size = 40 * 1024 * 1024
    target = start_upload(signed_in, dataset_id, {"filename": "big.jpg", "size": size})
    assert target.status_code == 201
    body = target.get_json()
    assert body["method"] == "multipart"
    assert len(body["urls"]) == -(-size // body["part_size"])
    # Resuming keeps the multipart upload (and so the parts already stored).
    again = signed_in.get(
        f"/api/datasets/{dataset_id}/uploads/{body['item']['id']}/target"
    ).get_json()
    assert again["uploadId"] == body["uploadId"] and len(again["urls"]) == len(body["urls"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"filename": "notes.exe", "size": 10}, "not a supported file"),
        ({"filename": "empty.png", "size": 0}, "is empty"),
        ({"filename": "huge.png", "size": 51 * 1024 * 1024}, "larger than 50 MB"),
        ({"filename": "a.png"}, "size"),
        ({"filename": 5, "size": 3}, "name"),
        ({"filename": "a.png", "size": True}, "size"),
    ],
)
def test_bad_upload_requests_get_a_json_error(
    signed_in: FlaskClient, body: dict[str, object], message: str
) -> None:
    dataset_id = create_dataset(signed_in)
    response = start_upload(signed_in, dataset_id, body)
    assert response.status_code == 422
    assert message in response.get_json()["error"]
    items = signed_in.get(f"/api/datasets/{dataset_id}/items").get_json()["items"]
    assert items == []  # nothing half-written


def test_non_json_body_gets_json_400(signed_in: FlaskClient) -> None:
    dataset_id = create_dataset(signed_in)
    response = signed_in.post(
        f"/api/datasets/{dataset_id}/uploads",
        data="not json",
        headers={**api_headers(signed_in), "Content-Type": "text/plain"},
    )
    assert response.status_code == 400
    assert "JSON" in response.get_json()["error"]


def test_completing_before_the_bytes_arrive_is_refused(signed_in: FlaskClient) -> None:
    dataset_id = create_dataset(signed_in)
    target = start_upload(signed_in, dataset_id, {"filename": "a.png", "size": 5}).get_json()
    done = signed_in.post(
        f"/api/datasets/{dataset_id}/uploads/{target['item']['id']}/complete",
        json={"etags": []},
        headers=api_headers(signed_in),
    )
    assert done.status_code == 422
    assert "not arrived" in done.get_json()["error"]


def test_a_short_upload_is_refused_and_leaves_nothing(signed_in: FlaskClient) -> None:
    dataset_id = create_dataset(signed_in)
    target = start_upload(signed_in, dataset_id, {"filename": "a.png", "size": 10}).get_json()
    signed_in.put(target["urls"][0].removeprefix("http://localhost"), data=b"123")
    done = signed_in.post(
        f"/api/datasets/{dataset_id}/uploads/{target['item']['id']}/complete",
        json={"etags": []},
        headers=api_headers(signed_in),
    )
    assert done.status_code == 422
    assert "incomplete" in done.get_json()["error"]
    assert signed_in.get(f"/api/datasets/{dataset_id}/items").get_json()["items"] == []


def test_tampered_upload_url_is_refused(signed_in: FlaskClient) -> None:
    dataset_id = create_dataset(signed_in)
    target = start_upload(signed_in, dataset_id, {"filename": "a.png", "size": 5}).get_json()
    url = target["urls"][0].removeprefix("http://localhost")
    response = signed_in.put(url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB"), data=b"1")
    assert response.status_code == 403
    assert "invalid or has expired" in response.get_json()["error"]


def test_another_persons_dataset_is_a_404(
    signed_in: FlaskClient, other_client: Callable[[str], FlaskClient]
) -> None:
    dataset_id = create_dataset(signed_in)
    eve = other_client("eve@example.com")
    assert eve.get(f"/datasets/{dataset_id}").status_code == 404
    assert eve.get(f"/api/datasets/{dataset_id}/items").status_code == 404
    response = start_upload(eve, dataset_id, {"filename": "a.png", "size": 5})
    assert response.status_code == 404
    assert "error" in response.get_json()
    token = csrf_token(eve.get("/dashboard").get_data(as_text=True))
    assert eve.post(f"/datasets/{dataset_id}/delete", data={"csrf_token": token}).status_code == 404
    assert signed_in.get(f"/datasets/{dataset_id}").status_code == 200


def test_pages_need_sign_in(client: FlaskClient) -> None:
    for path in ("/dashboard", "/datasets", "/runs", "/runs/new", "/datasets/1"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/sign-in" in response.headers["Location"]
    response = client.get("/api/datasets/1/items")
    assert response.status_code == 401 and "Sign in" in response.get_json()["error"]


def test_uploads_in_flight_are_capped_per_person(app: Flask, signed_in: FlaskClient) -> None:
    dataset_id = create_dataset(signed_in)
    with app.app_context():
        db.session.add_all(
            DatasetItem(dataset_id=dataset_id, filename=f"{n}.png", content_type="image/png",
                        media_kind="image", size_bytes=1, storage_key=f"k/{n}")
            for n in range(MAX_UNFINISHED_UPLOADS)
        )  # fmt: skip
        db.session.commit()
    refused = start_upload(signed_in, dataset_id, {"filename": "one-more.png", "size": 5})
    assert refused.status_code == 422 and "uploads in progress" in refused.get_json()["error"]
    with app.app_context():
        db.session.delete(db.session.scalars(select(DatasetItem).limit(1)).one())
        db.session.commit()
    assert (
        start_upload(signed_in, dataset_id, {"filename": "one-more.png", "size": 5}).status_code
        == 201
    )


def test_starting_uploads_is_rate_limited_per_account(
    signed_in: FlaskClient, other_client: Callable[[str], FlaskClient]
) -> None:
    dataset_id = create_dataset(signed_in)
    statuses = [start_upload(signed_in, dataset_id, {"filename": "x.gif", "size": 5}).status_code
                for _ in range(300)]  # fmt: skip
    assert set(statuses) == {422}  # refused as a type, but counted
    limited = start_upload(signed_in, dataset_id, {"filename": "a.png", "size": 5})
    assert limited.status_code == 429 and "error" in limited.get_json()
    assert int(limited.headers["Retry-After"]) > 0  # the upload page waits this long, then retries
    eve = other_client("eve@example.com")
    eve_dataset = create_dataset(eve)
    assert start_upload(eve, eve_dataset, {"filename": "a.png", "size": 5}).status_code == 201


def test_unknown_page_is_a_friendly_404(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "There is nothing here" in response.get_data(as_text=True)


def test_a_thumbnail_link_lives_no_longer_than_a_download_link(app: Flask) -> None:
    import time

    from app.accounts.models import User
    from app.extensions import get_settings, get_storage
    from tests.app.privacy.support import add_dataset
    from tests.support.web import sign_up

    client = app.test_client()
    sign_up(client)
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "ada@example.com"))
        dataset_id = add_dataset(user_id, files=1)
        item_id = db.session.scalar(
            select(DatasetItem.id).where(DatasetItem.dataset_id == dataset_id)
        )
    response = client.get(f"/datasets/{dataset_id}/items/{item_id}/thumbnail")
    assert response.status_code == 302
    with app.app_context():
        token = response.headers["Location"].rsplit("/", 1)[-1]
        claims = get_storage().verify_token(token, "download")
        lifetime = claims.expires_at - time.time()
        assert 0 < lifetime <= get_settings().download_url_expiry_s
