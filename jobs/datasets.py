"""Ingest: check each uploaded file, make its thumbnail, and mark it ready or rejected."""

from __future__ import annotations

import io
import tempfile
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from app.datasets.models import DatasetItem
from app.extensions import db, get_storage
from jobs.context import app_context, job_logger

MAX_PIXELS = 40_000_000
THUMBNAIL_SIZE = (256, 256)
IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class Rejected(Exception):
    """The file cannot be used; the message says why, for the person."""


def ingest(item_id: int) -> str:
    """Validate one uploaded item; safe to run twice (a finished item is left as it is)."""
    with app_context():
        item = db.session.get(DatasetItem, item_id)
        if item is None or item.status in ("ready", "rejected"):
            return "skipped"
        log = job_logger(__name__, f"ingest item {item_id}")
        storage = get_storage()
        with tempfile.TemporaryDirectory(prefix="attune-ingest-") as tmp:
            local = Path(tmp) / "original"
            storage.download_file(item.storage_key, local)
            try:
                thumbnail, (width, height) = _check_image(local, item.content_type)
            except Rejected as exc:
                log.info("rejected: %s", exc)
                storage.delete(item.storage_key)
                item.status, item.reject_reason = "rejected", str(exc)
                db.session.commit()
                return "rejected"
        item.thumbnail_key = item.storage_key.rsplit("/", 1)[0] + "/thumbnail.webp"
        storage.put(item.thumbnail_key, thumbnail, "image/webp")
        item.width, item.height, item.status = width, height, "ready"
        db.session.commit()
        log.info("ready: %dx%d", width, height)
        return "ready"


def _check_image(path: Path, declared_type: str) -> tuple[bytes, tuple[int, int]]:
    """Fully decode the image within the pixel limit; return a WebP thumbnail and its size."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path, formats=list(IMAGE_FORMATS)) as image:
                if IMAGE_FORMATS.get(image.format or "") != declared_type:
                    raise Rejected("The file's contents do not match its extension.")
                if image.width * image.height > MAX_PIXELS:
                    raise Rejected("The image is larger than 40 megapixels.")
                image.load()
                upright = ImageOps.exif_transpose(image).convert("RGB")
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise Rejected("The image is larger than 40 megapixels.") from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise Rejected("The file is not a readable JPEG, PNG or WebP image.") from exc
    size = upright.size
    upright.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    upright.save(buffer, "WEBP", quality=80)
    return buffer.getvalue(), size
