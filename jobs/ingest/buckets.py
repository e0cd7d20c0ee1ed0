"""The bucket preview from the sizes ingest recorded, without touching the files.

training.plan_sizes applies the training engine's own bucket rules to the recorded width,
height, frame count and fps, so the preview says what training will do without downloading the
dataset again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.datasets.models import DatasetItem
from app.datasets.previews import HEAVY_CROP


def plan_items(items: Sequence[DatasetItem], family: str, resolution: int) -> dict[str, Any]:
    """What each ready item becomes for family at resolution, with a summary for the page."""
    from training.data.buckets import MediaSize, plan_sizes
    from training.models import get_family

    resolution = resolution or get_family(family).spec.default_resolution
    entries = [
        MediaSize(item.filename, item.media_kind or "unknown", item.width or 0,
                  item.height or 0, item.frame_count or 0, item.fps or 0.0)
        for item in items
    ]  # fmt: skip
    planned = [
        _as_dict(item, plan)
        for item, plan in zip(items, plan_sizes(entries, family, resolution), strict=True)
    ]
    return {
        "family": family,
        "resolution": resolution,
        "items": planned,
        "summary": {
            "kept": sum(not p["dropped"] for p in planned),
            "dropped": sum(p["dropped"] for p in planned),
            "heavily_cropped": sum(bool(p["flag"]) and not p["dropped"] for p in planned),
        },
    }


def _as_dict(item: DatasetItem, plan: Any) -> dict[str, Any]:
    data = plan.to_dict()
    data.update(item_id=item.id, filename=item.filename, crop_fraction=plan.crop_fraction)
    heavy = not plan.dropped and plan.crop_fraction > HEAVY_CROP
    data["flag"] = (
        f"heavily cropped: {plan.crop_fraction:.0%} of the picture is cut away" if heavy else ""
    )
    return data
