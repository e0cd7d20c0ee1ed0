"""/api/v1 datasets and uploads with a key: create, list in pages, items with ingest state, and
the browser's presigned flow (single PUT, multipart with signing, listing and completing parts,
abort), with every refusal a problem naming the field."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from app.datasets.limits import PART_SIZE
from tests.app.api_v1.support import Api, assert_problem, create_key_in_browser


def _put(api: Api, url: str, data: bytes, content_type: str) -> str:
    """PUT bytes to a presigned (local storage) URL; returns the ETag."""
    response = api.client.put(
        url.removeprefix("http://localhost"), data=data, headers={"Content-Type": content_type}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.headers["ETag"]


def test_datasets_are_created_listed_in_pages_and_read(api: Api) -> None:
    created = api.post("/datasets", {"name": "Cats", "trigger_word": "sks_cat",
                                     "caption_template": "a photo of {trigger}"})  # fmt: skip
    assert created.status_code == 201
    body = created.get_json()
    assert created.headers["Location"] == f"/api/v1/datasets/{body['id']}"
    assert body["status"] == "empty" and body["items"] == {"total": 0, "ready": 0,
                                                           "rejected": 0, "pending": 0}  # fmt: skip
    assert api.get(f"/datasets/{body['id']}").get_json() == body
    for name in ("Dogs", "Birds"):
        assert api.post("/datasets", {"name": name}).status_code == 201
    first = api.get("/datasets?limit=2").get_json()
    assert [d["name"] for d in first["data"]] == ["Birds", "Dogs"]
    second = api.get(f"/datasets?limit=2&cursor={first['next_cursor']}").get_json()
    assert [d["name"] for d in second["data"]] == ["Cats"] and second["next_cursor"] is None
    assert_problem(api.get("/datasets?cursor=bm9wZQ"), 422, "cursor")
    assert_problem(api.get("/datasets?limit=0"), 422, "limit")
    assert_problem(api.get("/datasets?limit=1000"), 422, "limit")


def test_bad_dataset_requests_name_the_field(api: Api) -> None:
    assert_problem(api.post("/datasets", {}), 422, "name")
    assert_problem(api.post("/datasets", {"name": "  "}), 422, "name")
    assert_problem(api.post("/datasets", {"name": "x" * 121}), 422, "name")
    assert_problem(api.post("/datasets", {"name": "Cats", "trigger_word": "two words"}), 422,
                   "trigger_word")  # fmt: skip
    assert_problem(api.post("/datasets", {"name": 5}), 422, "name")
    assert_problem(api.post("/datasets", {"name": "Cats", "colour": "red"}), 422, "colour")
    assert_problem(api.post("/datasets", ["Cats"]), 400)
    assert_problem(api.call("POST", "/datasets", data="name=Cats"), 400)
    assert api.get("/datasets").get_json()["data"] == []  # nothing was half-made


def test_a_small_file_goes_in_one_put_and_its_item_is_listed(api: Api) -> None:
    dataset = api.post("/datasets", {"name": "Cats"}).get_json()["id"]
    start = api.post(f"/datasets/{dataset}/uploads",
                     {"filename": "a.png", "size": 5, "caption": "a cat"})  # fmt: skip
    assert start.status_code == 201
    target = start.get_json()
    assert (target["method"], target["part_count"], target["content_type"]) == (
        "single", 1, "image/png")  # fmt: skip
    assert target["item"]["status"] == "uploading" and target["expires_in"] > 0
    _put(api, target["urls"][0], b"12345", target["content_type"])
    done = api.post(f"/datasets/{dataset}/uploads/{target['item']['id']}/complete")
    assert done.status_code == 200 and done.get_json()["item"]["status"] == "uploaded"
    items = api.get(f"/datasets/{dataset}/items").get_json()
    assert [(i["filename"], i["status"], i["caption"]) for i in items["data"]] == [
        ("a.png", "uploaded", "a cat")]  # fmt: skip
    assert api.get(f"/datasets/{dataset}").get_json()["items"]["pending"] == 1


def test_a_large_file_goes_in_parts_that_can_be_resigned_listed_and_completed(api: Api) -> None:
    dataset = api.post("/datasets", {"name": "Clips"}).get_json()["id"]
    size = PART_SIZE + 1000
    target = api.post(f"/datasets/{dataset}/uploads", {"filename": "walk.mp4", "size": size})
    body = target.get_json()
    assert body["method"] == "multipart" and body["part_count"] == 2
    item = body["item"]["id"]
    base = f"/datasets/{dataset}/uploads/{item}"
    first = _put(api, body["urls"][0], b"\0" * PART_SIZE, body["content_type"])
    # Interrupted: ask what arrived, sign the missing part again, send it, complete.
    listed = api.get(f"{base}/parts").get_json()
    assert (listed["part_count"], listed["part_size"]) == (2, PART_SIZE)
    # Listed ETags come unquoted (storage normalises them); complete takes either form.
    assert [(p["part_number"], p["etag"]) for p in listed["parts"]] == [(1, first.strip('"'))]
    assert api.get(f"{base}/parts/2").get_json()["url"]  # one part signed again
    # Or all the URLs afresh, for the same item and multipart upload.
    resumed = api.get(f"{base}/target").get_json()
    assert (resumed["item"]["id"], resumed["method"], resumed["part_count"]) == (
        item, "multipart", 2)  # fmt: skip
    second = _put(api, resumed["urls"][1], b"\1" * 1000, body["content_type"])
    assert_problem(api.get(f"{base}/parts/3"), 422)
    assert_problem(api.post(f"{base}/complete", {"parts": [{"part_number": 1}]}), 422, "parts[0]")
    parts = [{"part_number": 1, "etag": first}, {"part_number": 2, "etag": second}]
    done = api.post(f"{base}/complete", {"parts": parts})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["item"]["size_bytes"] == size
    assert "already uploaded" in assert_problem(api.get(f"{base}/target"), 422)["detail"]


def test_an_upload_can_be_aborted_and_bad_starts_are_refused(api: Api) -> None:
    dataset = api.post("/datasets", {"name": "Cats"}).get_json()["id"]
    item = api.post(f"/datasets/{dataset}/uploads", {"filename": "a.png", "size": 5}).get_json()
    aborted = api.delete(f"/datasets/{dataset}/uploads/{item['item']['id']}")
    assert aborted.status_code == 204
    assert api.get(f"/datasets/{dataset}/items").get_json()["data"] == []
    assert_problem(api.delete(f"/datasets/{dataset}/uploads/{item['item']['id']}"), 404)
    uploads = f"/datasets/{dataset}/uploads"
    assert "not a supported file" in assert_problem(
        api.post(uploads, {"filename": "notes.exe", "size": 10}), 422)["detail"]  # fmt: skip
    assert "caption" in assert_problem(
        api.post(uploads, {"filename": "cat.txt", "size": 10}), 422)["detail"]  # fmt: skip
    assert_problem(api.post(uploads, {"filename": "a.png"}), 422, "size")
    assert_problem(api.post(uploads, {"filename": "a.png", "size": True}), 422, "size")
    assert_problem(api.post(uploads, {"filename": "a.png", "size": 2**70}), 422, "size")
    assert_problem(api.post(uploads, {"filename": 5, "size": 3}), 422, "filename")
    assert_problem(api.post(uploads, {"filename": "a.png", "size": 5, "caption": "x" * 2001}), 422)


def test_another_persons_datasets_are_404_and_never_listed(
    app: Flask, api: Api, other_client: Callable[[str], FlaskClient]
) -> None:
    dataset = api.post("/datasets", {"name": "Ada's cats"}).get_json()["id"]
    item = api.post(f"/datasets/{dataset}/uploads", {"filename": "a.png", "size": 5}).get_json()
    eve = Api(app, create_key_in_browser(other_client("eve@example.com")))
    assert eve.get("/datasets").get_json()["data"] == []
    for path in (f"/datasets/{dataset}", f"/datasets/{dataset}/items",
                 f"/datasets/{dataset}/uploads/{item['item']['id']}/parts"):  # fmt: skip
        assert_problem(eve.get(path), 404)
    assert_problem(eve.post(f"/datasets/{dataset}/uploads", {"filename": "b.png", "size": 5}), 404)
    assert_problem(eve.delete(f"/datasets/{dataset}/uploads/{item['item']['id']}"), 404)
    assert len(api.get(f"/datasets/{dataset}/items").get_json()["data"]) == 1
