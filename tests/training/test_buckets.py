"""plan_buckets: no upscaling, least crop, too-small and unreadable files dropped with reasons."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from tests.support.training_data import write_image
from training import plan_buckets
from training.data.buckets import BucketPlanItem, best_bucket, crop_box


def _plan(path: Path, family: str = "sd15", resolution: int = 512) -> BucketPlanItem:
    return plan_buckets([path], family, resolution)[0]


def test_exact_aspect_ratio_is_not_cropped(tmp_path: Path) -> None:
    item = _plan(write_image(tmp_path / "wide.png", 1536, 1024))
    assert (item.bucket_width, item.bucket_height) == (576, 384)  # 3:2, area <= 512**2
    assert item.crop_box == (0, 0, 1536, 1024)
    assert item.crop_fraction == 0.0 and not item.dropped


def test_small_image_is_never_upscaled(tmp_path: Path) -> None:
    item = _plan(write_image(tmp_path / "small.png", 300, 400))
    assert not item.dropped
    assert item.bucket_width <= 300 and item.bucket_height <= 400
    assert item.bucket_width % 64 == 0 and item.bucket_height % 64 == 0
    left, top, right, bottom = item.crop_box
    assert right - left >= item.bucket_width and bottom - top >= item.bucket_height


@pytest.mark.parametrize(("width", "height"), [(1000, 700), (701, 1303), (2000, 500), (512, 512)])
def test_chosen_bucket_crops_least_among_near_largest_buckets(width: int, height: int) -> None:
    chosen = best_bucket(width, height, 64, 512)
    assert chosen is not None

    def crop(bucket: tuple[int, int]) -> float:
        left, top, right, bottom = crop_box(width, height, *bucket)
        return 1 - (right - left) * (bottom - top) / (width * height)

    # Brute force over every bucket that fits in the source and the area budget.
    fits = [
        (w, h)
        for w in range(64, width + 1, 64)
        for h in range(64, height + 1, 64)
        if w * h <= 512 * 512 and max(w / h, h / w) <= 4
    ]
    largest = max(w * h for w, h in fits)
    near_largest = [b for b in fits if b[0] * b[1] >= 0.8 * largest]
    assert chosen in near_largest
    assert crop(chosen) <= min(crop(b) for b in near_largest) + 1e-4


def test_crop_box_is_centred_and_keeps_aspect() -> None:
    box = crop_box(1000, 500, 256, 256)
    assert box == (250, 0, 750, 500)


def test_too_small_image_is_dropped_with_a_reason(tmp_path: Path) -> None:
    item = _plan(write_image(tmp_path / "tiny.png", 120, 90))
    assert item.dropped
    assert "too small" in item.reason and "120x90" in item.reason


def test_exif_rotation_swaps_width_and_height(tmp_path: Path) -> None:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    item = _plan(write_image(tmp_path / "rotated.jpg", 768, 512, exif=exif.tobytes()))
    assert (item.source_width, item.source_height) == (512, 768)
    assert item.bucket_height > item.bucket_width


def test_unreadable_and_unsupported_files_are_dropped(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    notes = tmp_path / "notes.pdf"
    notes.write_bytes(b"%PDF")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    items = {Path(i.file).name: i for i in plan_buckets([broken, notes, clip], "sd15", 512)}
    assert items["broken.png"].dropped and "unreadable" in items["broken.png"].reason
    assert items["notes.pdf"].dropped and "unsupported" in items["notes.pdf"].reason
    assert items["clip.mp4"].dropped and "video" in items["clip.mp4"].reason


def test_plan_items_are_json_safe(tmp_path: Path) -> None:
    import json

    item = _plan(write_image(tmp_path / "a.png", 640, 640))
    assert json.loads(json.dumps(item.to_dict()))["crop_box"] == [0, 0, 640, 640]


def test_video_plan_keeps_the_longest_allowed_frame_count(tmp_path: Path) -> None:
    from training import video
    from training.data.buckets import _plan_file
    from training.models.base import FamilySpec

    spec = FamilySpec(
        name="toy-video",
        media="video",
        default_base_model="",
        pipeline_class="",
        default_resolution=64,
        min_resolution=32,
        max_resolution=512,
        size_multiple=16,
        prediction="flow_matching",
        fps=8,
        frame_counts=(1, 5, 9, 13),
    )
    from PIL import Image

    frames = [Image.new("RGB", (96, 64), (i * 10, 0, 0)) for i in range(24)]  # 2 s at 12 fps
    path = video.write_mp4(frames, tmp_path / "clip.mp4", 12)
    item = _plan_file(path, spec, 64)
    assert not item.dropped, item.reason
    assert item.frames == 13  # resampled to 8 fps the clip holds 16 frames; 13 is allowed
    assert len(video.read_clip(path, 8, (item.frames,), 96).frames) == 13
    assert (item.source_width, item.source_height) == (96, 64)
    assert item.bucket_width <= 96 and item.bucket_height <= 64


@pytest.mark.parametrize("family", ["tiny-sd", "sdxl", "wan21-t2v-1.3b"])
def test_planning_from_recorded_sizes_gives_the_files_plan(tmp_path: Path, family: str) -> None:
    """The dataset pages plan from sizes ingest recorded (plan_sizes); training plans from the
    files (plan_buckets): the same rules must give the same answer."""
    from training import video
    from training.data.buckets import MediaSize, plan_sizes, probe_image

    sizes = [(1536, 1024), (300, 400), (40, 40), (2000, 500), (1024, 1024), (700, 1303)]
    files = [write_image(tmp_path / f"{w}x{h}.png", w, h) for w, h in sizes]
    clips = [video.write_mp4([Image.new("RGB", (96, 64), (i, 0, 0)) for i in range(n)],
                             tmp_path / f"clip{n}.mp4", 16) for n in (3, 40)]  # fmt: skip
    entries = [MediaSize(str(f), "image", *probe_image(f)) for f in files]
    for clip in clips:
        probe = video.probe_clip(clip)
        entries.append(MediaSize(str(clip), "video", probe.width, probe.height,
                                 probe.frame_count, probe.fps))  # fmt: skip
    from_files = plan_buckets([*files, *clips], family, 0)
    from_sizes = plan_sizes(entries, family, 0)
    # Only difference allowed: a file refused for its type alone is not opened, so its size is
    # unknown to plan_buckets, while the recorded size is still shown.
    unsized = [replace(item, source_width=0, source_height=0) for item in from_sizes]
    assert unsized == [replace(item, source_width=0, source_height=0) for item in from_files]
    assert [i for i in from_sizes if i.bucket_width] == [i for i in from_files if i.bucket_width]
    assert any(item.dropped for item in from_files) and not all(i.dropped for i in from_files)
