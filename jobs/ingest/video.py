"""Checks on one uploaded clip: probed with PyAV through training.video, which opens only the
local file with the demuxer fixed by type and refuses every nested open, so playlists, concat
lists and external data references are never followed. Limits: 60 s, 4K; a poster frame
becomes the thumbnail."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from app.datasets.limits import MAX_VIDEO_LONG_SIDE, MAX_VIDEO_SECONDS, MAX_VIDEO_SHORT_SIDE
from jobs.ingest.facts import MediaFacts, Rejected, webp_thumbnail
from jobs.ingest.formats import FORMAT_NAMES

CONTENT_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm"}
POSTER_SIDE = 256


def check_video(path: Path, video_format: str) -> MediaFacts:
    """Probe the clip, enforce duration and size limits, and make a poster-frame thumbnail."""
    from training.errors import DatasetError
    from training.video import ClipTooLongError, probe_clip, read_clip

    local = _with_suffix(path, FORMAT_NAMES[video_format][1])
    try:
        probe = probe_clip(local)
        _check_limits(probe.width, probe.height, probe.duration, probe.fps)
        poster = read_clip(
            local, fps=1.0, frame_counts=(1,), max_side=POSTER_SIDE, max_seconds=MAX_VIDEO_SECONDS
        )
    except ClipTooLongError as exc:
        raise Rejected(_too_long(MAX_VIDEO_SECONDS + 1)) from exc
    except DatasetError as exc:
        raise Rejected(
            f"The file is not a readable {video_format.upper()} video: it is damaged, cut short, "
            "or refers to other files."
        ) from exc
    finally:
        if local != path:
            local.unlink(missing_ok=True)
    return MediaFacts(
        media_kind="video",
        content_type=CONTENT_TYPES[video_format],
        width=probe.width,
        height=probe.height,
        thumbnail=webp_thumbnail(poster.frames[0]),
        duration_s=round(probe.duration, 3),
        fps=round(probe.fps, 3),
        frame_count=probe.frame_count,
    )


def _check_limits(width: int, height: int, duration: float, fps: float) -> None:
    if duration > MAX_VIDEO_SECONDS:
        raise Rejected(_too_long(duration))
    if duration <= 0 or fps <= 0:
        raise Rejected("The video has no usable length or frame rate.")
    if max(width, height) > MAX_VIDEO_LONG_SIDE or min(width, height) > MAX_VIDEO_SHORT_SIDE:
        raise Rejected(
            f"The video is {width}x{height}; the limit is 4K "
            f"({MAX_VIDEO_LONG_SIDE}x{MAX_VIDEO_SHORT_SIDE})."
        )


def _too_long(duration: float) -> str:
    return f"The video is {duration:.0f} s long; clips may be at most {MAX_VIDEO_SECONDS:.0f} s."


def _with_suffix(path: Path, suffix: str) -> Path:
    """The demuxer is chosen from the suffix: give the file the one its bytes showed."""
    if path.suffix.lower() == suffix:
        return path
    target = Path(tempfile.mkdtemp(dir=path.parent)) / f"clip{suffix}"
    try:
        target.hardlink_to(path)
    except OSError:
        shutil.copyfile(path, target)
    return target
