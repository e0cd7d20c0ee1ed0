"""Aspect-ratio bucketing: what each dataset file becomes before training.

``plan_buckets`` is pure and light (PIL header reads, ``training.video.probe_clip`` for clips);
``plan_sizes`` gives the same plan from sizes already known, so the web side can show it
without the files. Rules: a bucket's sides are multiples of the family's size
multiple and its area is at most resolution**2; the source is never upscaled (every bucket side
fits inside the source); among the buckets that fit and keep at least 80% of the largest such
area, the one that crops least wins, larger area breaking ties. Sources with too few pixels for
a bucket of at least half the resolution per side are dropped with a reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from catalogue.media import clip_frame_counts, kind_refusal, too_short
from training.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm"})
MAX_ASPECT = 4.0  # buckets beyond 1:4 waste compute on slivers
AREA_SLACK = 0.8  # a bucket may give up 20% of the largest area to crop less
_EXIF_ORIENTATION = 0x0112
_ROTATED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class BucketPlanItem:
    """What one file becomes: bucket size, crop box in source pixels, frames, or why dropped."""

    file: str
    media: str  # "image" | "video" | "unknown"
    source_width: int = 0  # display orientation (after EXIF transpose / rotation)
    source_height: int = 0
    bucket_width: int = 0
    bucket_height: int = 0
    crop_box: tuple[int, int, int, int] = (0, 0, 0, 0)  # left, top, right, bottom in source px
    frames: int | None = None  # video: frames kept; images: None
    dropped: bool = False
    reason: str = ""

    @property
    def crop_fraction(self) -> float:
        """Share of the source area cut away by the crop (0.0 = nothing cropped)."""
        left, top, right, bottom = self.crop_box
        area = self.source_width * self.source_height
        return 1.0 - ((right - left) * (bottom - top)) / area if area else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict for the dataset pages."""
        data = asdict(self)
        data["crop_box"] = list(self.crop_box)
        return data


@dataclass(frozen=True)
class MediaSize:
    """What the planner needs of one file: as probed here, or as recorded when it was uploaded."""

    name: str
    media: str  # "image" | "video" | "unknown"
    width: int = 0  # display orientation (after EXIF transpose / rotation)
    height: int = 0
    frame_count: int = 0  # video only
    fps: float = 0.0  # video only


def plan_buckets(files: list[str | Path], family: str, resolution: int = 0) -> list[BucketPlanItem]:
    """Plan every file for ``family`` at ``resolution`` (0 = the family's default)."""
    from training.models import get_family

    spec = get_family(family).spec
    resolution = resolution or spec.default_resolution
    return [_plan_file(Path(f), spec, resolution) for f in files]


def plan_sizes(entries: list[MediaSize], family: str, resolution: int = 0) -> list[BucketPlanItem]:
    """The same plan from sizes already known (the dataset pages plan from what ingest
    recorded, without downloading the files again)."""
    from training.models import get_family

    spec = get_family(family).spec
    resolution = resolution or spec.default_resolution
    return [_plan_size(entry, spec, resolution) for entry in entries]


def _plan_file(path: Path, spec: Any, resolution: int) -> BucketPlanItem:
    suffix = path.suffix.lower()
    media = "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else ""
    if not media:
        return _dropped(str(path), "unknown", f"unsupported file type {suffix or '(none)'}")
    refused = kind_refusal(spec, media)
    if refused:  # decided by the type alone: no need to open the file
        return _dropped(str(path), media, refused)
    try:
        if media == "image":
            width, height = probe_image(path)
            entry = MediaSize(str(path), "image", width, height)
        else:
            from training import video

            probe = video.probe_clip(path)
            entry = MediaSize(
                str(path), "video", probe.width, probe.height, probe.frame_count, probe.fps
            )
    except DatasetError as exc:
        return _dropped(str(path), media, exc.message)
    return _plan_size(entry, spec, resolution)


def _plan_size(entry: MediaSize, spec: Any, resolution: int) -> BucketPlanItem:
    refused = kind_refusal(spec, entry.media)
    if refused:
        return _dropped(entry.name, entry.media, refused, entry.width, entry.height)
    fit = (entry.name, entry.media, entry.width, entry.height, spec.size_multiple, resolution)
    if entry.media == "image":
        return _fit(*fit, 1 if spec.is_video else None)
    usable = clip_frame_counts(spec, entry.frame_count, entry.fps)
    if not usable:
        reason = too_short(spec, entry.frame_count, entry.fps)
        return _dropped(entry.name, "video", reason, entry.width, entry.height)
    item = _fit(*fit, None)
    return item if item.dropped else _replace(item, frames=max(usable))


def probe_image(path: Path) -> tuple[int, int]:
    """(width, height) after EXIF orientation, from the header; DatasetError if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise DatasetError(f"unreadable image ({exc.__class__.__name__})", path) from exc
    if orientation in _ROTATED_ORIENTATIONS:
        width, height = height, width
    return width, height


def _fit(
    name: str,
    media: str,
    width: int,
    height: int,
    multiple: int,
    resolution: int,
    frames: int | None,
) -> BucketPlanItem:
    """Choose the bucket that crops least without upscaling; drop sources that are too small."""
    best = best_bucket(width, height, multiple, resolution)
    min_side = max(multiple, (resolution // 2) // multiple * multiple)
    if best is None or best[0] * best[1] < min_side * min_side:
        return _dropped(
            name,
            media,
            f"too small: {width}x{height} px; needs at least {min_side}x{min_side} px "
            f"worth of pixels at resolution {resolution}",
            width,
            height,
        )
    bucket_w, bucket_h = best
    return BucketPlanItem(
        file=name,
        media=media,
        source_width=width,
        source_height=height,
        bucket_width=bucket_w,
        bucket_height=bucket_h,
        crop_box=crop_box(width, height, bucket_w, bucket_h),
        frames=frames,
    )


def best_bucket(width: int, height: int, multiple: int, resolution: int) -> tuple[int, int] | None:
    """The (w, h) bucket inside the source with the least crop among near-largest buckets."""
    area = min(resolution * resolution, width * height)
    candidates: list[tuple[int, int]] = []
    for bucket_w in range(multiple, min(width, resolution * 4) + 1, multiple):
        tallest = min(area // bucket_w // multiple * multiple, height // multiple * multiple)
        for bucket_h in range(tallest, multiple - 1, -multiple):
            if bucket_h != tallest and bucket_w * bucket_h < AREA_SLACK * area:
                break
            if max(bucket_w / bucket_h, bucket_h / bucket_w) <= MAX_ASPECT:
                candidates.append((bucket_w, bucket_h))
    if not candidates:
        return None
    largest = max(w * h for w, h in candidates)

    def cost(bucket: tuple[int, int]) -> tuple[float, int]:
        scale = max(bucket[0] / width, bucket[1] / height)
        crop = 1.0 - (bucket[0] * bucket[1]) / (width * height * scale * scale)
        return (round(crop, 6), -bucket[0] * bucket[1])

    return min((b for b in candidates if b[0] * b[1] >= AREA_SLACK * largest), key=cost)


def crop_box(width: int, height: int, bucket_w: int, bucket_h: int) -> tuple[int, int, int, int]:
    """Centred box in source pixels with the bucket's aspect ratio, as large as fits."""
    scale = max(bucket_w / width, bucket_h / height)
    crop_w = min(width, round(bucket_w / scale))
    crop_h = min(height, round(bucket_h / scale))
    left = (width - crop_w) // 2
    top = (height - crop_h) // 2
    return (left, top, left + crop_w, top + crop_h)


def _dropped(name: str, media: str, reason: str, width: int = 0, height: int = 0) -> BucketPlanItem:
    return BucketPlanItem(
        file=name,
        media=media,
        source_width=width,
        source_height=height,
        dropped=True,
        reason=reason,
    )


def _replace(item: BucketPlanItem, **changes: Any) -> BucketPlanItem:
    from dataclasses import replace

    return replace(item, **changes)
