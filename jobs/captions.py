"""Automatic captions on a GPU queue, with the captioning model the operator configured
(ATTUNE_CAPTION_MODEL: a local folder or a hub id that transformers' pipeline loads)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from sqlalchemy import select

from app.datasets.limits import MAX_CAPTION_CHARS
from app.datasets.models import DatasetItem
from app.extensions import db, get_settings, get_storage
from jobs.context import app_context, job_logger

CAPTION_PROMPT = "a photo of"


def auto_caption(dataset_id: int) -> str:
    """Write a caption for every ready item of the dataset that has none; safe to re-run."""
    with app_context():
        model = get_settings().caption_model
        if not model:
            job_logger(__name__, f"auto-caption dataset {dataset_id}").info(
                "no model; nothing done"
            )
            return "not configured"
        return caption_dataset(dataset_id, model)


def caption_dataset(dataset_id: int, model: str) -> str:
    """Caption the dataset's ready items that have no caption with `model`."""
    logger = job_logger(__name__, f"auto-caption dataset {dataset_id}")
    items = db.session.scalars(
        select(DatasetItem)
        .where(DatasetItem.dataset_id == dataset_id, DatasetItem.status == "ready")
        .order_by(DatasetItem.id)
    )
    todo = [item for item in items if not item.caption]
    if not todo:
        return "nothing to caption"
    captioner = _load(model)
    for item in todo:
        item.caption = _caption(captioner, item)[:MAX_CAPTION_CHARS] or None
        db.session.commit()  # each caption shows up as soon as it is written
    logger.info("captioned %d items", len(todo))
    return f"captioned {len(todo)}"


def _load(model: str):  # type: ignore[no-untyped-def]
    import torch
    from transformers import pipeline

    device = 0 if torch.cuda.is_available() else -1
    # transformers 5 serves captioning models (BLIP, ...) as "image-text-to-text".
    return pipeline("image-text-to-text", model=model, device=device)


def _caption(captioner, item: DatasetItem) -> str:  # type: ignore[no-untyped-def]
    from PIL import Image

    storage = get_storage()
    # Clips are described by their poster frame, which ingest stored as the thumbnail.
    key = item.storage_key if item.media_kind == "image" else item.thumbnail_key
    if not key:
        return ""
    with tempfile.TemporaryDirectory(prefix="attune-caption-") as tmp:
        local = Path(tmp) / "source"
        storage.download_file(key, local)
        with Image.open(io.BytesIO(local.read_bytes())) as image:
            picture = image.convert("RGB")
    result = captioner(images=picture, text=CAPTION_PROMPT, max_new_tokens=60)
    return " ".join(str(result[0].get("generated_text", "")).split())
