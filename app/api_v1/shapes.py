"""The JSON shapes of /api/v1 (described in app/openapi.yaml): one function per resource; a
run's is app.trainings.run_json (its webhook events carry it too).

Shapes are stable: fields are added, never renamed or removed, within v1. Times are ISO 8601
in UTC; sizes are bytes; GPU time is seconds.
"""

from __future__ import annotations

from typing import Any

from app.datasets.models import Dataset, DatasetItem
from app.datasets.services import DatasetSummary
from app.trainings.run_json import when

DATASET_STATES = {"empty": "empty", "processing": "processing", "ready": "ready",
                  "no usable items": "unusable"}  # fmt: skip


def dataset_json(summary: DatasetSummary) -> dict[str, Any]:
    """A dataset with its item counts by ingest state."""
    dataset: Dataset = summary.dataset
    return {
        "id": dataset.id,
        "name": dataset.name,
        "trigger_word": dataset.trigger_word,
        "caption_template": dataset.caption_template,
        "status": DATASET_STATES[summary.status],
        "items": {
            "total": summary.items,
            "ready": summary.ready,
            "rejected": summary.rejected,
            "pending": summary.pending,
        },
        "size_bytes": summary.size_bytes,
        "created_at": when(dataset.created_at),
    }


def item_json(item: DatasetItem) -> dict[str, Any]:
    """One file of a dataset and what ingest made of it (the reason when it was rejected)."""
    return {
        "id": item.id,
        "dataset_id": item.dataset_id,
        "filename": item.filename,
        "kind": item.media_kind,
        "status": item.status,
        "reject_reason": item.reject_reason,
        "size_bytes": item.size_bytes,
        "width": item.width,
        "height": item.height,
        "duration_s": item.duration_s,
        "fps": item.fps,
        "caption": item.caption,
        "archive": item.archive_name,
        "created_at": when(item.created_at),
    }
