"""Writing one rendered sample to disk, the same way for training samples and try-it renders:
a png for an image; for a clip an mp4 and an animated webp preview (the one an <img> shows)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

CONTENT_TYPES = {".png": "image/png", ".webp": "image/webp", ".mp4": "video/mp4"}


def write_sample(frames: list[Image.Image], stem: Path, fps: int | None) -> list[Path]:
    """Write `frames` next to `stem`: stem.png for an image (fps None), else stem.mp4 and
    stem.webp at `fps`. Returns the files written."""
    if fps is None:
        path = stem.with_suffix(".png")
        frames[0].save(path)
        return [path]
    from training import video

    return [
        video.write_mp4(frames, stem.with_suffix(".mp4"), fps),
        video.write_webp(frames, stem.with_suffix(".webp"), fps),
    ]
