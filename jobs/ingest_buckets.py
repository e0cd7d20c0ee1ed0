"""The bucket preview from the sizes ingest recorded, without touching the files.

training.plan_buckets(files, family, resolution) reads files; the preview must not download a
dataset again, so this adapter applies the same rules to recorded sizes using the training
engine's own pieces (best_bucket, crop_box, resampled_frame_count, the family's spec).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.datasets.models import DatasetItem
from app.datasets.previews import HEAVY_CROP


def plan_items(items: Sequence[DatasetItem], family: str, resolution: int) -> dict[str, Any]:
    """What each ready item becomes for family at resolution, with a summary for the page."""
    from training.models import get_family

    spec = get_family(family).spec
    resolution = resolution or spec.default_resolution
    planned = [_plan_one(item, spec, resolution) for item in items]
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


def _plan_one(item: DatasetItem, spec: Any, resolution: int) -> dict[str, Any]:
    from training.data.buckets import BucketPlanItem, resampled_frame_count

    media, width, height = item.media_kind or "unknown", item.width or 0, item.height or 0
    frames: int | None = None
    reason = ""
    if media == "image" and spec.is_video and 1 not in spec.frame_counts:
        reason = f"{spec.name} trains on video clips only"
    elif media == "video" and not spec.is_video:
        reason = f"{spec.name} trains on images; video is not used"
    elif media == "video":
        available = resampled_frame_count(item.frame_count or 0, item.fps or 0.0, spec.fps)
        usable = [count for count in spec.frame_counts if count <= available]
        if usable:
            frames = max(usable)
        else:
            reason = (
                f"too short: about {available} frames at {spec.fps} fps, "
                f"at least {min(spec.frame_counts)} needed"
            )
    elif spec.is_video:
        frames = 1
    plan = (
        BucketPlanItem(item.filename, media, width, height, dropped=True, reason=reason)
        if reason
        else _fit(item.filename, media, width, height, spec.size_multiple, resolution, frames)
    )
    return _as_dict(item, plan)


def _fit(
    name: str, media: str, width: int, height: int, multiple: int, resolution: int, frames: Any
) -> Any:
    """The training engine's fit rule: least crop without upscaling, too-small sources dropped."""
    from training.data.buckets import BucketPlanItem, best_bucket, crop_box

    best = best_bucket(width, height, multiple, resolution) if width and height else None
    min_side = max(multiple, (resolution // 2) // multiple * multiple)
    if best is None or best[0] * best[1] < min_side * min_side:
        reason = (
            f"too small: {width}x{height} px; needs at least {min_side}x{min_side} px "
            f"worth of pixels at resolution {resolution}"
        )
        return BucketPlanItem(name, media, width, height, dropped=True, reason=reason)
    return BucketPlanItem(
        file=name,
        media=media,
        source_width=width,
        source_height=height,
        bucket_width=best[0],
        bucket_height=best[1],
        crop_box=crop_box(width, height, best[0], best[1]),
        frames=frames,
    )


def _as_dict(item: DatasetItem, plan: Any) -> dict[str, Any]:
    data = plan.to_dict()
    data.update(item_id=item.id, filename=item.filename, crop_fraction=plan.crop_fraction)
    heavy = not plan.dropped and plan.crop_fraction > HEAVY_CROP
    data["flag"] = (
        f"heavily cropped: {plan.crop_fraction:.0%} of the picture is cut away" if heavy else ""
    )
    return data
