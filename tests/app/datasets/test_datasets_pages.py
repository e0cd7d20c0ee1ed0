"""Dataset pages and tools: list with sizes and status, settings, item deletion, quota,
captions (inline, trigger word, find and replace, .txt pairing, auto-caption) and the preview."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from rq import Queue

from app.datasets.limits import extension_of
from app.datasets.models import Dataset, DatasetItem
from app.extensions import db, get_redis, get_storage
from jobs.datasets import store_preview
from tests.support.datasets import create_dataset, start_upload
from tests.support.web import api_headers, csrf_token
from training import plan_buckets

MB = 1024 * 1024


def _ready_item(
    app: Flask, client: FlaskClient, dataset_id: int, name: str, **facts: object
) -> int:
    """An uploaded item marked ready with the given sizes, as ingest would leave it."""
    response = start_upload(client, dataset_id, {"filename": name, "size": 1000})
    item_id = response.get_json()["item"]["id"]
    with app.app_context():
        item = db.session.get(DatasetItem, item_id)
        assert item is not None
        item.storage_key = item.accepted_object_key(extension_of(name))
        get_storage().put(item.storage_key, b"x" * 1000)
        item.status = "ready"
        for field, value in {"width": 640, "height": 480, **facts}.items():
            setattr(item, field, value)
        db.session.commit()
    return item_id


def _post_form(client: FlaskClient, url: str, **fields: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get("/datasets").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **fields}, follow_redirects=True)


def test_list_shows_items_size_and_status(app: Flask, signed_in: FlaskClient) -> None:
    dataset_id = create_dataset(signed_in, "Portraits")
    _ready_item(app, signed_in, dataset_id, "a.jpg")
    start_upload(signed_in, dataset_id, {"filename": "b.png", "size": 3 * MB})
    page = signed_in.get("/datasets").get_data(as_text=True)
    assert "Portraits" in page and "1 ready" in page and "1 in progress" in page
    assert "3 MB" in page and "processing" in page


def test_settings_rename_trigger_and_template(app: Flask, signed_in: FlaskClient) -> None:
    dataset_id = create_dataset(signed_in)
    url = f"/datasets/{dataset_id}/settings"
    bad = _post_form(signed_in, url, name="Dogs", trigger_word="two words")
    assert bad.status_code == 422 and "letters, digits" in bad.get_data(as_text=True)
    ok = _post_form(
        signed_in, url, name="Dogs", trigger_word="sks_dog", caption_template="a photo of {trigger}"
    )
    page = ok.get_data(as_text=True)
    assert ok.status_code == 200 and "<h1>Dogs</h1>" in page and "sks_dog" in page
    assert "a photo of {trigger}" in page


def test_deleting_an_item_removes_its_files(app: Flask, signed_in: FlaskClient) -> None:
    dataset_id = create_dataset(signed_in)
    item_id = _ready_item(app, signed_in, dataset_id, "a.jpg")
    response = _post_form(signed_in, f"/datasets/{dataset_id}/items/{item_id}/delete")
    assert response.status_code == 200 and "Deleted “a.jpg”" in response.get_data(as_text=True)
    assert signed_in.get(f"/api/datasets/{dataset_id}/items").get_json()["items"] == []
    with app.app_context():
        assert list(get_storage().list(f"users/1/datasets/{dataset_id}/")) == []


def test_uploads_in_flight_count_against_the_free_allowance(signed_in: FlaskClient) -> None:
    dataset_id = create_dataset(signed_in)
    first = start_upload(signed_in, dataset_id, {"filename": "a.zip", "size": 600 * MB})
    assert first.status_code == 201
    second = start_upload(signed_in, dataset_id, {"filename": "b.zip", "size": 600 * MB})
    assert second.status_code == 422
    assert "does not fit" in second.get_json()["error"]
    item_id = first.get_json()["item"]["id"]  # aborting the first frees its reservation
    aborted = signed_in.delete(
        f"/api/datasets/{dataset_id}/uploads/{item_id}", headers=api_headers(signed_in)
    )
    assert aborted.status_code == 200
    assert (
        start_upload(signed_in, dataset_id, {"filename": "b.zip", "size": 600 * MB}).status_code
        == 201
    )


def test_caption_tools(app: Flask, signed_in: FlaskClient) -> None:
    dataset_id = create_dataset(signed_in, trigger="sks_cat")
    headers = api_headers(signed_in)
    first = start_upload(
        signed_in,
        dataset_id,
        {"filename": "01.jpg", "relative_path": "cats/01.jpg", "size": 10, "caption": "a cat"},
    ).get_json()["item"]
    second = _ready_item(app, signed_in, dataset_id, "02.jpg")
    assert first["caption"] == "a cat" and first["filename"] == "cats/01.jpg"

    edited = signed_in.patch(
        f"/api/datasets/{dataset_id}/items/{second}",
        json={"caption": "a black cat"},
        headers=headers,
    )
    assert edited.get_json()["item"]["caption"] == "a black cat"
    too_long = signed_in.patch(
        f"/api/datasets/{dataset_id}/items/{second}", json={"caption": "x" * 2001}, headers=headers
    )
    assert too_long.status_code == 422 and "2,000" in too_long.get_json()["error"]

    page = _post_form(signed_in, f"/datasets/{dataset_id}/captions/prepend-trigger")
    assert "Added 2 captions" in page.get_data(as_text=True)
    page = _post_form(
        signed_in, f"/datasets/{dataset_id}/captions/replace", find="cat", replace="kitten"
    )
    assert "Changed 2 captions" in page.get_data(as_text=True)
    captions = {
        i["filename"]: i["caption"]
        for i in signed_in.get(f"/api/datasets/{dataset_id}/items").get_json()["items"]
    }
    assert captions == {
        "cats/01.jpg": "sks_kitten, a kitten",
        "02.jpg": "sks_kitten, a black kitten",
    }

    paired = signed_in.post(
        f"/api/datasets/{dataset_id}/captions",
        json={"captions": {"CATS/01.txt": "on a wall", "03.txt": "nobody"}},
        headers=headers,
    ).get_json()
    assert paired == {"paired": 1, "unmatched": ["03.txt"]}


def test_auto_caption_explains_or_queues(app: Flask, signed_in: FlaskClient) -> None:
    dataset_id = create_dataset(signed_in)
    _ready_item(app, signed_in, dataset_id, "a.jpg")
    page = _post_form(signed_in, f"/datasets/{dataset_id}/captions/auto").get_data(as_text=True)
    assert "no captioning model is configured" in page
    app.extensions["attune.settings"] = app.extensions["attune.settings"].__class__(
        **{**vars(app.extensions["attune.settings"]), "caption_model": "/models/blip"}
    )
    page = _post_form(signed_in, f"/datasets/{dataset_id}/captions/auto").get_data(as_text=True)
    assert "Captioning has started" in page
    with app.app_context():
        jobs = Queue("gpu-24gb", connection=get_redis()).jobs
    assert [(job.func_name, job.args) for job in jobs] == [
        ("jobs.captions.auto_caption", (dataset_id,))
    ]


def test_bucket_preview_is_planned_by_a_job_and_polled(
    app: Flask, signed_in: FlaskClient, tmp_path: Path
) -> None:
    dataset_id = create_dataset(signed_in)
    url = f"/api/datasets/{dataset_id}/bucket-preview"
    headers = api_headers(signed_in)
    early = signed_in.post(url, json={"family": "tiny-sd", "resolution": 64}, headers=headers)
    assert early.status_code == 422 and "No items are ready" in early.get_json()["error"]
    bad = signed_in.post(url, json={"family": "tiny-sd", "resolution": 70}, headers=headers)
    assert "multiple of 16" in bad.get_json()["error"]
    # Only what this server trains (tiny-sd here) is offered, with its range spelled out.
    page = signed_in.get(f"/datasets/{dataset_id}").get_data(as_text=True)
    assert page.count('<option value="') == 1 and 'value="tiny-sd"' in page
    assert "32 to 512 px, a multiple of 16; 64 by default." in page
    off = signed_in.post(url, json={"family": "sdxl", "resolution": 1024}, headers=headers)
    assert off.status_code == 422
    assert off.get_json()["error"] == "Stable Diffusion XL is not enabled on this server."

    _ready_item(app, signed_in, dataset_id, "photo.jpg", width=640, height=480)
    _ready_item(app, signed_in, dataset_id, "tiny.png", width=20, height=20)
    _ready_item(app, signed_in, dataset_id, "strip.jpg", width=1600, height=100)
    _ready_item(
        app, signed_in, dataset_id, "walk.mp4", width=320, height=240, duration_s=2.0, fps=12.0,
        frame_count=24,
    )  # fmt: skip
    queued = signed_in.post(url, json={"family": "tiny-sd", "resolution": 64}, headers=headers)
    assert queued.status_code == 202 and queued.get_json()["status"] == "pending"
    with app.app_context():
        jobs = [(j.func_name, j.args) for j in Queue("cpu", connection=get_redis()).jobs]
        assert jobs.count(("jobs.datasets.bucket_preview", (dataset_id, "tiny-sd", 64))) == 1
        dataset = db.session.get(Dataset, dataset_id)
        assert dataset is not None
        assert store_preview(dataset, "tiny-sd", 64) == "ready"
    preview = signed_in.get(queued.get_json()["poll"]).get_json()
    assert preview["status"] == "ready"
    plans = {p["filename"]: p for p in preview["items"]}
    # The plan from recorded sizes equals what the training engine plans from real files.
    for name, size in (
        ("photo.jpg", (640, 480)),
        ("tiny.png", (20, 20)),
        ("strip.jpg", (1600, 100)),
    ):
        Image.new("RGB", size).save(tmp_path / name)
        (engine,) = plan_buckets([tmp_path / name], "tiny-sd", 64)
        expected = {k: v for k, v in engine.to_dict().items() if k != "file"}
        assert {k: plans[name][k] for k in expected} == expected, name
    assert plans["tiny.png"]["dropped"] and "too small" in plans["tiny.png"]["reason"]
    assert plans["walk.mp4"]["dropped"] and "video is not used" in plans["walk.mp4"]["reason"]
    assert "heavily cropped" in plans["strip.jpg"]["flag"]
    assert preview["summary"] == {"kept": 2, "dropped": 2, "heavily_cropped": 1}

    _ready_item(app, signed_in, dataset_id, "new.jpg")  # the plan no longer matches the dataset
    assert signed_in.get(queued.get_json()["poll"]).get_json()["status"] in ("stale", "pending")


def test_the_grid_pages_by_name_and_rejected_items_go_in_one_click(
    app: Flask, signed_in: FlaskClient
) -> None:
    dataset_id = create_dataset(signed_in)
    names = [f"img{index:03d}.jpg" for index in range(61)]
    with app.app_context():
        for name in reversed(names):  # uploaded in the opposite order of their names
            status = "rejected" if name in ("img005.jpg", "img060.jpg") else "ready"
            db.session.add(
                DatasetItem(
                    dataset_id=dataset_id, filename=name, content_type="image/jpeg",
                    storage_key="", status=status, reject_reason="Not a picture.",
                )
            )  # fmt: skip
        db.session.commit()
    first = signed_in.get(f"/datasets/{dataset_id}").get_data(as_text=True)
    shown = re.findall(r'<span class="name">([^<]+)</span>', first)
    assert shown == names[:60] and "Page 1 of 2" in first and "page=2" in first
    second = signed_in.get(f"/datasets/{dataset_id}/items-grid?page=2").get_data(as_text=True)
    assert re.findall(r'<span class="name">([^<]+)</span>', second) == ["img060.jpg"]
    assert "Page 2 of 2" in signed_in.get(f"/datasets/{dataset_id}?page=99").get_data(as_text=True)

    api = f"/api/datasets/{dataset_id}/items"
    rejected = signed_in.get(f"{api}?status=rejected").get_json()["items"]
    assert [item["filename"] for item in rejected] == ["img060.jpg", "img005.jpg"]
    assert signed_in.get(f"{api}?status=lost").status_code == 422

    assert "Remove 2 rejected" in first
    done = _post_form(signed_in, f"/datasets/{dataset_id}/items/remove-rejected")
    assert "Removed 2 rejected items." in done.get_data(as_text=True)
    assert signed_in.get(f"{api}?status=rejected").get_json()["items"] == []
    assert len(signed_in.get(api).get_json()["items"]) == 59
