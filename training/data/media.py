"""Decode a planned file into training pixels: EXIF transpose, RGB, crop box, resize to bucket."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from training.data.dataset import PreparedItem
from training.errors import DatasetError

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from training.models.base import FamilySpec


def load_pixels(item: PreparedItem, spec: FamilySpec) -> torch.Tensor:
    """Image -> (3, H, W); video family -> (3, F, H, W); floats in [-1, 1]."""
    import numpy as np
    import torch

    plan = item.plan
    if plan.media == "video":
        frames, box = _read_video(item, spec)
    else:
        frames, box = [open_rgb_image(item)], plan.crop_box
    size = (plan.bucket_width, plan.bucket_height)
    array = np.stack([np.asarray(_crop_resize(f, box, size)) for f in frames])  # F, H, W, 3
    pixels = torch.from_numpy(array).permute(3, 0, 1, 2).float().div_(127.5).sub_(1.0)
    return pixels if spec.is_video else pixels[:, 0]


def open_rgb_image(item: PreparedItem) -> Image.Image:
    """Fully decoded, EXIF-upright RGB image; transparency composited onto white."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(item.path) as raw:
            raw.load()
            image = ImageOps.exif_transpose(raw)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise DatasetError(f"image does not decode ({exc})", item.name) from exc
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def _read_video(
    item: PreparedItem, spec: FamilySpec
) -> tuple[list[Image.Image], tuple[int, int, int, int]]:
    """Frames at the family's fps and planned length, read no larger than needed."""
    from training import video

    plan = item.plan
    scale = max(
        plan.bucket_width / (plan.crop_box[2] - plan.crop_box[0]),
        plan.bucket_height / (plan.crop_box[3] - plan.crop_box[1]),
    )
    max_side = math.ceil(max(plan.source_width, plan.source_height) * min(1.0, scale * 1.25))
    clip = video.read_clip(item.path, spec.fps or 16, (plan.frames or 1,), max_side)
    width, height = clip.frames[0].size
    fx, fy = width / plan.source_width, height / plan.source_height
    left, top, right, bottom = plan.crop_box
    box = (round(left * fx), round(top * fy), round(right * fx), round(bottom * fy))
    return clip.frames, box


def _crop_resize(
    image: Image.Image, box: tuple[int, int, int, int], size: tuple[int, int]
) -> Image.Image:
    from PIL import Image

    cropped = image.crop(box)
    if cropped.size == size:
        return cropped
    return cropped.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
