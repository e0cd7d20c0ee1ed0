"""What ingest learns about a usable file, why it refuses one, and the thumbnail it makes."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from app.datasets.limits import THUMBNAIL_SIZE


class Rejected(Exception):
    """The file cannot be used; the message says why, for the person."""


@dataclass(frozen=True)
class MediaFacts:
    """What ingest learnt about a usable file."""

    media_kind: str  # "image" or "video"
    content_type: str
    width: int  # display orientation
    height: int
    thumbnail: bytes  # WebP
    duration_s: float | None = None
    fps: float | None = None
    frame_count: int | None = None


def webp_thumbnail(image: Image.Image) -> bytes:
    """An upright WebP of at most THUMBNAIL_SIZE (alpha kept where the image has it)."""
    upright = ImageOps.exif_transpose(image)
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    upright = upright.convert("RGBA" if has_alpha else "RGB")
    upright.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    upright.save(buffer, "WEBP", quality=80)
    return buffer.getvalue()
