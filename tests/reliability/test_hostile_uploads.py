"""Hostile files through the real path: the JSON upload API, a presigned PUT, completion, and
the ingest job run by a real `python -m jobs.worker --burst cpu` process whose peak memory is
measured. Extends tests/jobs/test_ingest_hostile.py (single files checked directly) without
repeating it.

Each file is refused with a reason a person understands, either when the upload starts (by
name and size) or by ingest (by content); nothing of a refused file stays in storage.
Hostile *names* are not refused for being odd: they are display text only (storage keys are
chosen by the server), so they are cleaned (no control characters, no "..", at most 255
characters) and refused only when the cleaned name is not a supported type.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.datasets.models import DatasetItem
from app.extensions import db, get_storage
from tests.support.accounts import person_with_dataset
from tests.support.live_service import worker_environment
from tests.support.media_files import HOSTILE_SVG, noise_png_bytes

REPO = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
PEAK_RSS_LIMIT_MB = 400


HEIC = struct.pack(">I", 24) + b"ftypheic\0\0\0\0mif1heic" + struct.pack(">I", 40) + b"meta"
HEIC += b"\0" * 4000
TEN_MB_CAPTION = "a very long caption " * (10 * MB // 20)


def stored_zip(entries: list[tuple[str, bytes]]) -> bytes:
    """A plain zip built by zipfile."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def many_entries_zip(count: int) -> bytes:
    """`count` empty stored entries, written by hand (zipfile takes seconds for 100,000)."""
    local, central = bytearray(), bytearray()
    for n in range(count):
        name = f"f{n}.png".encode()
        offset = len(local)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0)
        local += name
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name),
            0, 0, 0, 0, 0, offset,
        ) + name  # fmt: skip
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count & 0xFFFF, count & 0xFFFF,
                      len(central), len(local), 0)  # fmt: skip
    if count > 0xFFFF:  # zipfile reads the real count from the central directory size
        end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, len(central),
                          len(local), 0)  # fmt: skip
    return bytes(local + central + end)


def overlapping_zip(copies: int = 300, size: int = 30 * MB) -> bytes:
    """The overlapping-entry bomb: `copies` central entries over one deflated stream of zeros
    (about 30 KB here that would unpack to 9 GB, under the 10 GB listing limit)."""
    data = b"\0" * size
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = packer.compress(data) + packer.flush()
    crc, name = zlib.crc32(data), b"a.png"
    body = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(deflated), size,
                       len(name), 0) + name + deflated  # fmt: skip
    entry = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc,
                        len(deflated), size, len(name), 0, 0, 0, 0, 0, 0) + name  # fmt: skip
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, copies, copies, len(entry) * copies,
                      len(body), 0)  # fmt: skip
    return body + entry * copies + end


# name -> (bytes, words the reason must contain); refused by ingest.
REFUSED_BY_INGEST = {
    "drawing.png": (HOSTILE_SVG, "web page or script"),
    "photo.jpg": (HEIC, "HEIC/HEIF"),
    "clip.mp4": (HEIC, "HEIC/HEIF"),
    "overlap.zip": (overlapping_zip(), "entries overlap"),
    "many.zip": (many_entries_zip(100_000), "holds 100,000 files; the limit is 5,000"),
    "nested.zip": (
        stored_zip(
            [("ok.png", noise_png_bytes()), ("more/inner.zip", stored_zip([("x.png", b"x")]))]
        ),
        "another archive",
    ),
}
# name -> words of the reason; refused when the upload starts, before anything is stored.
REFUSED_AT_START = {
    "drawing.svg": "not a supported file",
    "photo.heic": "not a supported file",
    "invoice\u202egnp.js": "not a supported file",  # shows as "invoicesj.png" in some UIs
    "a.png\u0000.exe": "not a supported file",
    "/../../etc/passwd": "not a supported file",
    "x" * 100_000 + ".exe": "not a supported file",
}
# name -> the display name kept; accepted (the bytes are a real PNG), stored under our key.
CLEANED_NAMES = {
    "../../../etc/cron.d/evil.png": "etc/cron.d/evil.png",
    "..\\..\\Windows\\System32\\evil.png": "Windows/System32/evil.png",
    "photo\u202e\u200f\u0000\u0007.png": "photo.png",
    "y" * 100_000 + ".png": "y" * 251 + ".png",
}


def start_upload(client: FlaskClient, token: str, dataset_id: int, **body: Any) -> Any:
    """POST the upload request as upload.js does."""
    return client.post(
        f"/api/datasets/{dataset_id}/uploads",
        data=json.dumps(body),
        headers={"X-CSRFToken": token, "Content-Type": "application/json"},
    )


def upload(client: FlaskClient, token: str, dataset_id: int, name: str, data: bytes) -> int:
    """Start, PUT the bytes to the presigned URL, complete; returns the item id."""
    started = start_upload(client, token, dataset_id, filename=name, size=len(data))
    assert started.status_code == 201, (name[:60], started.get_json())
    body = started.get_json()
    assert body["method"] == "single"
    put = client.put(body["urls"][0].removeprefix("http://localhost"), data=data)
    assert put.status_code == 200, put.text
    item_id = body["item"]["id"]
    done = client.post(
        f"/api/datasets/{dataset_id}/uploads/{item_id}/complete",
        json={"etags": []},
        headers={"X-CSRFToken": token},
    )
    assert done.status_code == 200, done.get_json()
    return int(item_id)


def run_worker(app: Flask) -> int:
    """Drain the cpu queue with a real worker process; returns its peak RSS in MB."""
    script = (
        "import resource, subprocess, sys\n"
        "command = [sys.executable, '-m', 'jobs.worker', '--burst', 'cpu']\n"
        "code = subprocess.run(command).returncode\n"
        "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=worker_environment(app),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    code, peak = result.stdout.split()[-2:]
    assert code == "0", result.stderr[-3000:]
    return int(peak)


@pytest.fixture
def owner(rel_app: Flask) -> tuple[FlaskClient, str, int]:
    """A signed-in person with an empty dataset: (client, CSRF token, dataset id)."""
    return person_with_dataset(rel_app, "Hostile")


def test_hostile_files_are_refused_clearly_and_leave_nothing(
    rel_app: Flask, owner: tuple[FlaskClient, str, int]
) -> None:
    client, token, dataset_id = owner
    for name, reason in REFUSED_AT_START.items():
        response = start_upload(client, token, dataset_id, filename=name, size=100)
        assert response.status_code == 422, name[:60]
        assert reason in response.get_json()["error"], response.get_json()
    ids = {name: upload(client, token, dataset_id, name, data)
           for name, (data, _) in REFUSED_BY_INGEST.items()}  # fmt: skip
    clean_ids = {name: upload(client, token, dataset_id, name, noise_png_bytes(seed=n))
                 for n, name in enumerate(CLEANED_NAMES)}  # fmt: skip
    captioned = stored_zip(
        [("cat.png", noise_png_bytes(seed=9)), ("cat.txt", TEN_MB_CAPTION.encode())]
    )
    upload(client, token, dataset_id, "captioned.zip", captioned)

    peak_mb = run_worker(rel_app)
    print(f"hostile uploads: worker peak RSS {peak_mb} MB")  # RELIABILITY.md quotes this
    assert peak_mb < PEAK_RSS_LIMIT_MB

    with rel_app.app_context():
        items = {item.id: item for item in db.session.scalars(select(DatasetItem))}
        storage = get_storage()
        for name, item_id in ids.items():  # a refused zip stays one item: nothing unpacked
            item = items[item_id]
            assert item.status == "rejected", (name, item.status)
            assert REFUSED_BY_INGEST[name][1] in (item.reject_reason or ""), item.reject_reason
            assert list(storage.list(item.object_prefix())) == []
            assert item.upload_key and storage.stat(item.upload_key) is None
        for name, item_id in clean_ids.items():
            item = items[item_id]
            assert item.status == "ready" and item.filename == CLEANED_NAMES[name]
            assert item.storage_key.endswith(f"/items/{item_id}/accepted/original.png")
        by_name = {item.filename: item for item in items.values()}
        assert by_name["cat.png"].status == "ready" and by_name["cat.png"].caption is None
        assert "longer than 2,000 characters" in (by_name["cat.txt"].reject_reason or "")
        assert {i.status for i in items.values()} == {"ready", "rejected"}
        # Only ready items have objects: originals and thumbnails.
        ready = [i for i in items.values() if i.status == "ready"]
        keys = {info.key for info in storage.list("users/")}
        expected = {i.storage_key for i in ready} | {i.thumbnail_key for i in ready}
        assert keys == expected


def test_ten_megabyte_captions_are_refused_by_every_json_door(
    rel_app: Flask, owner: tuple[FlaskClient, str, int]
) -> None:
    client, token, dataset_id = owner
    refused = start_upload(
        client, token, dataset_id, filename="a.png", size=100, caption=TEN_MB_CAPTION
    )
    assert refused.status_code == 422
    assert "limited to 2,000 characters" in refused.get_json()["error"]
    item_id = upload(client, token, dataset_id, "a.png", noise_png_bytes())
    headers = {"X-CSRFToken": token}
    patched = client.patch(
        f"/api/datasets/{dataset_id}/items/{item_id}",
        json={"caption": TEN_MB_CAPTION},
        headers=headers,
    )
    assert patched.status_code == 422 and "2,000" in patched.get_json()["error"]
    paired = client.post(
        f"/api/datasets/{dataset_id}/captions",
        json={"captions": {"a.txt": TEN_MB_CAPTION}},
        headers=headers,
    )
    assert paired.status_code == 422 and "2,000" in paired.get_json()["error"]
    too_many = client.post(
        f"/api/datasets/{dataset_id}/captions",
        json={"captions": {f"{n}.txt": "x" for n in range(5001)}},
        headers=headers,
    )
    assert too_many.status_code == 422
    with rel_app.app_context():
        items = list(db.session.scalars(select(DatasetItem)))
        assert [(i.id, i.caption) for i in items] == [(item_id, None)]
