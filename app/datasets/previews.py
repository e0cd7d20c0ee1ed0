"""Bucket preview: what each item becomes for a base model and resolution, before any GPU time.

The app may not import training, so a CPU job (jobs.datasets.bucket_preview) plans from the
sizes ingest recorded and stores the result in Redis for a day; the page asks for it and polls.
A stored preview counts only while the dataset's ready items are the ones it planned.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from app.datasets.models import Dataset
from app.datasets.services import DatasetError, ready_item_ids
from app.extensions import get_redis
from app.queues import CPU_QUEUE, enqueue_task
from catalogue.families import FAMILIES, FamilyFacts

PREVIEW_TTL_S = 24 * 3600
PENDING_TTL_S = 600
PREVIEW_TIMEOUT_S = 300
# A crop that cuts away more than this share of the picture is flagged to the person.
HEAVY_CROP = 0.25


def preview_key(dataset_id: int, family: str, resolution: int) -> str:
    """The Redis key of one stored preview (the job writes it, the page reads it)."""
    return f"{previews_prefix(dataset_id)}{family}:{resolution}"


def previews_prefix(dataset_id: int) -> str:
    """How the Redis keys of every preview of the dataset begin."""
    return f"attune:bucket-preview:{dataset_id}:"


def pending_key(dataset_id: int, family: str, resolution: int) -> str:
    return preview_key(dataset_id, family, resolution) + ":pending"


def preview_job_id(dataset_id: int, family: str, resolution: int) -> str:
    """The RQ job id of one preview; the ids of a dataset's previews share its prefix."""
    return f"{preview_job_prefix(dataset_id)}{family}-{resolution}"


def preview_job_prefix(dataset_id: int) -> str:
    """How the RQ job ids of every preview of the dataset begin."""
    return f"bucket-preview-{dataset_id}-"


def resolution_hint(facts: FamilyFacts) -> str:
    """The resolutions a family trains at, as the forms explain them (preview and new run)."""
    return (
        f"{facts.min_resolution} to {facts.max_resolution} px, a multiple of "
        f"{facts.resolution_multiple}; {facts.default_resolution} by default."
    )


def check_choice(
    family: object, resolution: object, enabled_families: Iterable[str]
) -> tuple[FamilyFacts, int]:
    """A base model this server trains and a resolution within its limits, or DatasetError."""
    info = FAMILIES.get(family) if isinstance(family, str) else None
    enabled = [name for name in enabled_families if name in FAMILIES]
    if info is None:
        raise DatasetError(f"Choose a base model: {', '.join(enabled)}.")
    if info.name not in enabled:
        raise DatasetError(f"{info.label} is not enabled on this server.")
    if isinstance(resolution, str) and resolution.strip().isdigit():
        resolution = int(resolution)
    if resolution in (None, "", 0):
        return info, info.default_resolution
    if not isinstance(resolution, int) or isinstance(resolution, bool):
        raise DatasetError("The resolution must be a whole number of pixels.")
    if not info.min_resolution <= resolution <= info.max_resolution:
        raise DatasetError(
            f"{info.label} trains at {info.min_resolution} to {info.max_resolution} px."
        )
    if resolution % info.resolution_multiple:
        raise DatasetError(
            f"{info.label} needs a resolution that is a multiple of {info.resolution_multiple}."
        )
    return info, resolution


def request_preview(dataset: Dataset, family: str, resolution: int) -> None:
    """Queue the preview job unless one for the same choice is already on its way."""
    if not ready_item_ids(dataset):
        raise DatasetError("No items are ready yet; the preview plans the ready ones.")
    redis = get_redis()
    if redis.set(pending_key(dataset.id, family, resolution), "1", nx=True, ex=PENDING_TTL_S):
        enqueue_task(
            "jobs.datasets.bucket_preview",
            dataset.id,
            family,
            resolution,
            queue=CPU_QUEUE,
            timeout_s=PREVIEW_TIMEOUT_S,
            job_id=preview_job_id(dataset.id, family, resolution),
        )


def read_preview(dataset: Dataset, family: str, resolution: int) -> dict[str, Any]:
    """The stored preview with status 'ready' or 'failed', else 'pending', 'stale' or 'none'."""
    redis = get_redis()
    raw = redis.get(preview_key(dataset.id, family, resolution))
    pending = redis.exists(pending_key(dataset.id, family, resolution))
    if raw is not None:
        preview = json.loads(raw)
        if preview.get("item_ids") == ready_item_ids(dataset):
            return {"status": "failed" if preview.get("error") else "ready", **preview}
        return {"status": "pending" if pending else "stale"}
    return {"status": "pending" if pending else "none"}
