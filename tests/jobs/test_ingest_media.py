"""Ingest of good files: images (EXIF orientation), clips (mp4, mov, webm) and zips with captions.

The media are made small and real by tests/support/media_files.py, shared by every ingest test.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask import Flask
from PIL import Image

from app.extensions import get_storage
from jobs.datasets import ingest_item
from tests.support.media_files import (
    clip_file,
    items_of,
    jpeg_bytes,
    png_bytes,
    stored_keys,
    uploaded_item,
    zip_bytes,
)


def test_jpeg_is_ready_upright_with_a_thumbnail(ingest_app: Flask) -> None:
    # Orientation 6: stored landscape, shown portrait.
    item = uploaded_item("portrait.jpg", jpeg_bytes((80, 40), orientation=6))
    assert ingest_item(item) == "ready"
    assert (item.status, item.width, item.height) == ("ready", 40, 80)
    thumbnail = Image.open(io.BytesIO(get_storage().get(item.thumbnail_key or "")))
    assert thumbnail.format == "WEBP" and thumbnail.height > thumbnail.width
    assert ingest_item(item) == "ready" or item.status == "ready"  # a re-run changes nothing


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".webm"])
def test_clips_are_probed_and_get_a_poster(ingest_app: Flask, tmp_path: Path, suffix: str) -> None:
    clip = clip_file(tmp_path / f"clip{suffix}", frames=24, fps=12)
    item = uploaded_item(f"walk{suffix}", clip.read_bytes())
    assert ingest_item(item) == "ready", item.reject_reason
    assert (item.media_kind, item.width, item.height) == ("video", 64, 48)
    assert item.duration_s == pytest.approx(2.0, abs=0.1)
    assert item.fps == pytest.approx(12.0) and item.frame_count == 24
    assert Image.open(io.BytesIO(get_storage().get(item.thumbnail_key or ""))).format == "WEBP"


def test_zip_entries_become_items_with_paired_captions(ingest_app: Flask, tmp_path: Path) -> None:
    clip = clip_file(tmp_path / "c.mp4").read_bytes()
    archive = zip_bytes(
        [
            ("cats/01.jpg", jpeg_bytes()),
            ("cats/01.txt", "un chat tigré sur un mur".encode()),
            ("cats/02.png", png_bytes()),
            ("clips/run.mp4", clip),
            ("__MACOSX/cats/._01.jpg", b"junk"),
            ("notes.pdf", b"%PDF-1.4"),
            ("orphan.txt", b"nobody's caption"),
            ("cats/03.jpg", b"not really a jpeg"),
        ]
    )
    item = uploaded_item("holiday.zip", archive)
    dataset_id = item.dataset_id
    zip_key = item.upload_key
    assert ingest_item(item) == "unpacked"

    found = {i.filename: i for i in items_of(dataset_id)}
    assert set(found) == {
        "cats/01.jpg", "cats/02.png", "clips/run.mp4", "notes.pdf", "orphan.txt", "cats/03.jpg"
    }  # fmt: skip
    assert found["cats/01.jpg"].status == "ready"
    assert found["cats/01.jpg"].caption == "un chat tigré sur un mur"
    assert found["cats/01.jpg"].archive_name == "holiday.zip"
    assert found["clips/run.mp4"].status == "ready" and found["clips/run.mp4"].media_kind == "video"
    assert "Not a supported file type" in (found["notes.pdf"].reject_reason or "")
    assert "caption was not used" in (found["orphan.txt"].reject_reason or "")
    assert "first bytes match none" in (found["cats/03.jpg"].reject_reason or "")
    keys = stored_keys(dataset_id)
    assert zip_key not in keys  # the zip itself is gone once unpacked
    assert all("/entries/" in key for key in keys)  # server-built keys, no entry names
    assert not any("cats" in key or "clips" in key for key in keys)
    assert len(keys) == 2 * 3  # original + thumbnail for the three ready entries
