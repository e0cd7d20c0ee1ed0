"""Which files a family can train on: one rule for the web app and the engine's planner.

The app refuses a run before it is queued when the dataset holds files the base model cannot
use (judged from what ingest recorded: the media kind, frame count and frame rate); the engine's
bucket planner (``training.data.buckets``) drops the same files with the same reasons. Both
call these functions, with a catalogue ``FamilyFacts`` or the engine's ``FamilySpec`` (which
copies these facts from the catalogue).
"""

from __future__ import annotations

from typing import Protocol


class MediaFacts(Protocol):
    """What the rules read of a family (FamilyFacts and the engine's FamilySpec have it)."""

    name: str
    fps: int | None
    min_clip_frames: int

    @property
    def is_video(self) -> bool:
        """True for families that train on clips."""

    @property
    def frame_counts(self) -> tuple[int, ...]:
        """Clip lengths the family trains on."""


def kind_refusal(family: MediaFacts, media: str, clips_only: bool = False) -> str:
    """Why the family cannot use this kind of file at all ("" when it can).

    ``clips_only``: the run needs clips (the motion preset: stills teach no motion).
    """
    if media == "image" and family.is_video and (clips_only or 1 not in family.frame_counts):
        return f"{family.name} needs video clips here; still images are not used"
    if media == "video" and not family.is_video:
        return f"{family.name} trains on images; video is not used"
    if media not in ("image", "video"):
        return "unsupported file type"
    return ""


def resampled_frame_count(frame_count: int, source_fps: float, fps: float) -> int:
    """Frames a clip yields when resampled from source_fps to fps (first frame at t=0)."""
    if frame_count <= 0:
        return 0
    if source_fps <= 0:
        return frame_count
    last_time = (frame_count - 1) / source_fps
    return int(last_time * fps + 1e-4) + 1


def clip_frame_counts(family: MediaFacts, frame_count: int, source_fps: float) -> list[int]:
    """The clip lengths (at the family's fps) a clip of frame_count frames can give."""
    available = resampled_frame_count(frame_count, source_fps, family.fps or source_fps)
    return [n for n in family.frame_counts if family.min_clip_frames <= n <= available]


def too_short(family: MediaFacts, frame_count: int, source_fps: float) -> str:
    """Why the clip is too short for the family ("" when it is long enough)."""
    if clip_frame_counts(family, frame_count, source_fps):
        return ""
    available = resampled_frame_count(frame_count, source_fps, family.fps or source_fps)
    return (
        f"too short: about {available} frames at {family.fps} fps, "
        f"at least {family.min_clip_frames} needed"
    )


def refusal(
    family: MediaFacts,
    media: str,
    frame_count: int = 0,
    source_fps: float = 0.0,
    clips_only: bool = False,
) -> str:
    """Why the family cannot train on this file, by kind and length ("" when it can)."""
    reason = kind_refusal(family, media, clips_only)
    if reason or media != "video":
        return reason
    return too_short(family, frame_count, source_fps)
