"""One rule for which files a family trains on: the app's refusal and the engine's plan agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from catalogue.families import family_facts
from catalogue.media import refusal, resampled_frame_count
from training.data.buckets import plan_buckets
from training.video import write_mp4


def test_clips_are_judged_at_the_family_frame_rate() -> None:
    assert resampled_frame_count(48, 24.0, 16) == 32  # 2 s of clip
    assert resampled_frame_count(7, 60.0, 24) == 3
    wan, ltx = family_facts("wan22-ti2v-5b"), family_facts("ltx2")
    assert refusal(wan, "video", 5, 24.0) == ""  # exactly the shortest clip, 5 frames
    assert refusal(wan, "video", 4, 24.0).startswith("too short: about 4 frames at 24 fps")
    assert refusal(ltx, "video", 8, 24.0).endswith("at least 9 needed")
    assert refusal(ltx, "video", 9, 24.0) == ""


def test_stills_train_video_families_unless_the_run_needs_clips() -> None:
    wan = family_facts("wan22-t2v-a14b")
    assert refusal(wan, "image") == ""
    assert "still images are not used" in refusal(wan, "image", clips_only=True)
    assert refusal(family_facts("sdxl"), "video", 48, 24.0).endswith("video is not used")
    assert refusal(family_facts("sdxl"), "image") == ""


@pytest.mark.parametrize(("family", "frames"), [("wan22-ti2v-5b", 4), ("ltx2", 8)])
def test_the_engine_drops_a_short_clip_with_the_reason_the_app_gives(
    tmp_path: Path, family: str, frames: int
) -> None:
    path = write_mp4([Image.new("RGB", (64, 64), (9 * i, 0, 0)) for i in range(frames)],
                     tmp_path / "short.mp4", 24)  # fmt: skip
    (planned,) = plan_buckets([path], family, 256)
    assert planned.dropped
    assert planned.reason == refusal(family_facts(family), "video", frames, 24.0)
