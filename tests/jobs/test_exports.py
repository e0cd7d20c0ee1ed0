"""The data export: everything about the person, nothing about anyone else, a link that expires."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.billing.models import GpuUsage
from app.billing.services import long_moment
from app.datasets.models import DatasetItem
from app.db_types import utcnow
from app.extensions import db, get_storage
from app.privacy.models import DataExport, DeletionReceipt
from tests.app.privacy.support import (  # noqa: F401 (inline_jobs is a fixture)
    add_dataset,
    add_run,
    add_subscription,
    inline_jobs,
    links,
    make_user,
    path_of,
    run_jobs,
    signed_in_as,
)
from tests.support.datasets import create_dataset, start_upload
from tests.support.media_files import jpeg_bytes, png_bytes
from tests.support.smtp import SmtpServer
from tests.support.web import api_headers, csrf_token

pytestmark = pytest.mark.usefixtures("inline_jobs")


def person(email: str, secret_word: str) -> int:
    """Someone with a dataset, a run, a subscription, a usage row and a deletion receipt."""
    user_id = make_user(email, name=f"Person {secret_word}", company=f"{secret_word} Ltd")
    dataset_id = add_dataset(user_id, name=f"{secret_word}-faces", files=2)
    run_id = add_run(user_id, dataset_id, samples=1)
    add_subscription(user_id, "active", stripe_subscription_id=f"sub_{secret_word}")
    now = utcnow()
    db.session.add_all(
        [
            GpuUsage(
                user_id=user_id,
                run_id=run_id,
                segment_key=f"run:{run_id}:attempt:1",
                gpu_seconds=42.5,
                started_at=now,
                ended_at=now,
            ),
            DeletionReceipt(
                user_id=user_id,
                group_key=f"request:{user_id}:x",
                scope="dataset",
                reason="requested",
                what=f"dataset “{secret_word}-old”",
                status="done",
                object_count=3,
                deleted_at=now,
            ),
        ]
    )
    db.session.commit()
    return user_id


def request_export(client: FlaskClient) -> None:
    token = csrf_token(client.get("/my-data").get_data(as_text=True))
    assert client.post("/my-data/exports", data={"csrf_token": token}).status_code == 302


def download(client: FlaskClient, export_id: int) -> bytes:
    """Follow the my-data link to the short-lived storage URL and fetch the zip."""
    response = client.get(f"/my-data/exports/{export_id}/download")
    assert response.status_code == 302
    file = client.get(path_of(response.headers["Location"]))
    assert file.status_code == 200, file.get_data(as_text=True)[:300]
    assert "attachment" in file.headers["Content-Disposition"]
    return file.get_data()


def test_export_holds_all_of_the_persons_data_and_none_of_anyone_elses(
    app: Flask, mailbox: SmtpServer
) -> None:
    with app.app_context():
        ada = person("ada@example.com", "ada")
        grace = person("grace@example.com", "grace")
    client = signed_in_as(app.test_client(), ada)
    request_export(client)
    request_export(client)  # a second request while one is pending is refused politely
    assert "already being prepared" in client.get("/my-data").get_data(as_text=True)
    run_jobs(app)  # builds the export, then sends its "ready" e-mail
    assert mailbox.messages[-1]["Subject"] == "Your Attune data export is ready"
    assert path_of(links(mailbox.messages[-1])[0]) == "/my-data"
    with app.app_context():
        export = db.session.scalars(select(DataExport)).one()
        assert export.status == "ready" and export.storage_key.startswith(f"users/{ada}/exports/")
    page = client.get("/my-data").get_data(as_text=True)
    assert long_moment(export.expires_at) in page
    archive = zipfile.ZipFile(io.BytesIO(download(client, export.id)))
    data = json.loads(archive.read("attune-export.json"))
    assert data["profile"]["email"] == "ada@example.com" and data["profile"]["company"] == "ada Ltd"
    assert "password_hash" not in data["profile"] and "session_version" not in data["profile"]
    assert [d["name"] for d in data["datasets"]] == ["ada-faces"]
    assert len(data["datasets"][0]["items"]) == 2
    assert len(data["runs"]) == 1 and data["runs"][0]["artifacts"]["lora"].startswith(
        f"users/{ada}/"
    )
    assert [s["stripe_subscription_id"] for s in data["subscriptions"]] == ["sub_ada"]
    assert [u["gpu_seconds"] for u in data["gpu_usage"]] == [42.5]
    assert [r["what"] for r in data["deletion_receipts"]] == ["dataset “ada-old”"]
    files = sorted(name for name in archive.namelist() if name.startswith("files/"))
    assert len(files) == 2 + 4  # 2 thumbnails; LoRA, ComfyUI, checkpoint, sample
    assert all(not name.startswith("files/exports/") for name in files)
    # The originals are in the dataset's own zip, under the names they were uploaded with.
    dataset_id = data["datasets"][0]["id"]
    faces = zipfile.ZipFile(io.BytesIO(archive.read(f"datasets/{dataset_id}-ada-faces.zip")))
    assert faces.namelist() == ["0.png", "1.png"]
    assert faces.read("0.png") == f"image {ada}-0".encode()
    everything = b"".join(archive.read(name) for name in archive.namelist())
    assert b"grace" not in everything and f"users/{grace}/".encode() not in everything
    # Someone else's export id is a 404, never a link.
    other = signed_in_as(app.test_client(), grace)
    assert other.get(f"/my-data/exports/{export.id}/download").status_code == 404


def test_an_expired_export_cannot_be_downloaded(app: Flask) -> None:
    with app.app_context():
        ada = person("ada@example.com", "ada")
    client = signed_in_as(app.test_client(), ada)
    request_export(client)
    run_jobs(app)
    with app.app_context():
        export = db.session.scalars(select(DataExport)).one()
    with time_machine.travel(export.expires_at + timedelta(seconds=1), tick=False):
        response = client.get(f"/my-data/exports/{export.id}/download")
        assert response.headers["Location"] == "/my-data"
        assert "has expired" in client.get("/my-data").get_data(as_text=True)


def test_a_dataset_from_the_export_uploads_again_as_the_same_items(app: Flask) -> None:
    pictures = {
        "holiday/beach.jpg": jpeg_bytes(),
        "Beach.png": png_bytes(),
        "dune.png": png_bytes(),
    }
    captions = {"holiday/beach.jpg": "a cat on the beach", "Beach.png": "the same beach, by night"}
    with app.app_context():
        ada = make_user("ada@example.com")
    client = signed_in_as(app.test_client(), ada)
    dataset_id = create_dataset(client, "Cats on holiday")
    for name, data in pictures.items():
        upload(client, dataset_id, name, data, captions.get(name))
    upload(client, dataset_id, "broken.png", b"not a picture", None)
    run_jobs(app)  # ingest: three ready, one refused

    request_export(client)
    run_jobs(app)
    with app.app_context():
        export = db.session.scalars(select(DataExport)).one()
    archive = zipfile.ZipFile(io.BytesIO(download(client, export.id)))
    again = archive.read(f"datasets/{dataset_id}-Cats-on-holiday.zip")
    names = zipfile.ZipFile(io.BytesIO(again)).namelist()
    assert sorted(names) == [
        "Beach.png",
        "Beach.txt",
        "dune.png",
        "holiday/beach.jpg",
        "holiday/beach.txt",
    ]

    copy_id = create_dataset(client, "Cats again")
    upload(client, copy_id, "Cats on holiday.zip", again, None)
    run_jobs(app)  # ingest unpacks the zip
    items = client.get(f"/api/datasets/{copy_id}/items").get_json()["items"]
    assert {item["filename"]: item["caption"] for item in items} == {
        name: captions.get(name) for name in pictures
    }
    assert all(item["status"] == "ready" for item in items)
    with app.app_context():
        for item in db.session.scalars(
            select(DatasetItem).where(DatasetItem.dataset_id == copy_id)
        ):
            assert get_storage().get(item.storage_key) == pictures[item.filename]


@pytest.mark.parametrize("limit", ["entries", "bytes"])
def test_a_dataset_too_large_for_one_zip_comes_in_parts_that_each_upload_again(
    app: Flask, monkeypatch: pytest.MonkeyPatch, limit: str
) -> None:
    import app.datasets.portable as portable
    from jobs.ingest.zip import DEFAULT_LIMITS

    # The real parts stay within what the zip ingest takes, and what a zip upload may weigh.
    assert DEFAULT_LIMITS.max_entries == portable.PART_ENTRIES
    assert DEFAULT_LIMITS.max_unpacked_bytes > portable.PART_BYTES
    pictures = {f"{n}.png": png_bytes((64 + n, 48)) for n in range(4)}
    captions = {"0.png": "first", "1.png": "second"}
    if limit == "entries":  # a captioned item is two entries: [0], [1, 2], [3]
        monkeypatch.setattr(portable, "PART_ENTRIES", 3)
    else:  # room for two pictures a part: [0, 1], [2, 3]
        monkeypatch.setattr(portable, "PART_BYTES", 2 * max(map(len, pictures.values())) + 20)
    with app.app_context():
        ada = make_user("ada@example.com")
    client = signed_in_as(app.test_client(), ada)
    dataset_id = create_dataset(client, "Big")
    for name, data in pictures.items():
        upload(client, dataset_id, name, data, captions.get(name))
    run_jobs(app)

    request_export(client)
    run_jobs(app)
    with app.app_context():
        export = db.session.scalars(select(DataExport)).one()
    archive = zipfile.ZipFile(io.BytesIO(download(client, export.id)))
    parts = sorted(n for n in archive.namelist() if n.startswith("datasets/"))
    count = 3 if limit == "entries" else 2
    assert parts == [
        f"datasets/{dataset_id}-Big-part-{n}-of-{count}.zip" for n in range(1, count + 1)
    ]
    copy_id = create_dataset(client, "Big again")
    for part in parts:
        data = archive.read(part)
        listing = zipfile.ZipFile(io.BytesIO(data)).infolist()
        assert len(listing) <= portable.PART_ENTRIES
        assert sum(info.file_size for info in listing) <= portable.PART_BYTES
        upload(client, copy_id, part.removeprefix("datasets/"), data, None)
    run_jobs(app)
    items = client.get(f"/api/datasets/{copy_id}/items").get_json()["items"]
    assert {item["filename"]: item["caption"] for item in items} == {
        name: captions.get(name) for name in pictures
    }
    assert all(item["status"] == "ready" for item in items)


def upload(
    client: FlaskClient, dataset_id: int, name: str, data: bytes, caption: str | None
) -> None:
    """Send one file as the page does: start, PUT the bytes, complete."""
    body = {"filename": name, "size": len(data), "relative_path": name, "caption": caption}
    target = start_upload(client, dataset_id, body).get_json()
    assert target["method"] == "single", target
    assert (
        client.put(target["urls"][0].removeprefix("http://localhost"), data=data).status_code == 200
    )
    done = client.post(
        f"/api/datasets/{dataset_id}/uploads/{target['item']['id']}/complete",
        json={"etags": []},
        headers=api_headers(client),
    )
    assert done.status_code == 200, done.get_json()
