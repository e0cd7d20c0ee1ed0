"""Data for the training engine's tests: the SD-family names and their smallest resolutions,
deterministic images, and a small clip dataset."""

from __future__ import annotations

from pathlib import Path

SD_FAMILIES = ("tiny-sd", "sd15", "sdxl")
# Smallest resolution each family accepts: keeps CPU steps fast.
TEST_RESOLUTION = {"tiny-sd": 64, "sd15": 256, "sdxl": 256}


def write_image(path: Path, width: int, height: int, seed: int = 0, **save: object) -> Path:
    """A deterministic noisy-gradient RGB image; extra kwargs go to PIL's save (e.g. exif)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), x * 0 + 128], -1)
    noise = rng.integers(0, 40, size=(height, width, 3))
    pixels = np.clip(base + noise, 0, 255).astype("uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **save)
    return path


def write_clip_dataset(folder: Path, fps: int, frames: int) -> Path:
    """A 256 px clip of `frames` frames at `fps` with a caption, and a 256 px still, in folder."""
    from PIL import Image

    from training.video import write_mp4

    folder.mkdir(parents=True, exist_ok=True)
    clip = [Image.new("RGB", (256, 256), (20 * i, 80, 220 - 20 * i)) for i in range(frames)]
    write_mp4(clip, folder / "clip.mp4", fps=fps)
    (folder / "clip.txt").write_text("a video of [trigger] dog", encoding="utf-8")
    write_image(folder / "still.png", 256, 256, seed=3)
    return folder
