"""Fixtures for the training engine: tiny models built once per session, small image datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from training.config import TrainingConfig

SD_FAMILIES = ("tiny-sd", "sd15", "sdxl")
# Smallest resolution each family accepts: keeps CPU steps fast.
TEST_RESOLUTION = {"tiny-sd": 64, "sd15": 256, "sdxl": 256}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """tiny_model(family) -> folder holding that family's tiny random pipeline (built once)."""
    from training.models import make_tiny

    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = make_tiny(family, tmp_path_factory.mktemp(f"tiny-{family}"))
        return built[family]

    return get


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


@pytest.fixture
def image_dataset(tmp_path: Path) -> Callable[..., Path]:
    """image_dataset(sizes, captions=None) -> a folder of PNGs (and .txt captions)."""

    def build(sizes: list[tuple[int, int]], captions: dict[int, str] | None = None) -> Path:
        folder = tmp_path / "data"
        for index, (width, height) in enumerate(sizes):
            write_image(folder / f"img{index}.png", width, height, seed=index)
        for index, text in (captions or {}).items():
            (folder / f"img{index}.txt").write_text(text, encoding="utf-8")
        folder.mkdir(exist_ok=True)
        return folder

    return build


@pytest.fixture
def tiny_config(tiny_model: Callable[[str], Path]) -> Callable[..., TrainingConfig]:
    """tiny_config(family='tiny-sd', **fields) -> a fast TrainingConfig on the tiny model."""

    def build(family: str = "tiny-sd", **fields: object) -> TrainingConfig:
        values: dict[str, object] = {
            "family": family,
            "base_model": str(tiny_model(family)),
            "steps": 3,
            "rank": 4,
            "learning_rate": 1e-3,
            "resolution": TEST_RESOLUTION[family],
            "trigger_word": "sks",
            "caption_dropout": 0.0,
            "checkpoint_every": 0,
            "sample_steps": 2,
            "mixed_precision": "fp32",
        }
        values.update(fields)
        return TrainingConfig(**values)  # type: ignore[arg-type]

    return build


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
