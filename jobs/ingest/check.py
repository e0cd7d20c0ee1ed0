"""One file checked against its extension: the format its bytes show, then a full image
decode or a video probe. The only entry point ingest uses for a single file."""

from __future__ import annotations

from pathlib import Path

from jobs.ingest.facts import MediaFacts, Rejected
from jobs.ingest.formats import check_format
from jobs.ingest.image import check_image
from jobs.ingest.video import check_video


def check_file(path: Path, extension: str) -> MediaFacts:
    """Check a local file against its extension: sniffed format, then a full image decode or a
    video probe. Raises Rejected with the reason."""
    found = check_format(path, extension)
    if found in ("jpeg", "png", "webp"):
        return check_image(path, found)
    if found in ("mp4", "mov", "webm"):
        return check_video(path, found)
    raise Rejected("Archives are unpacked only when uploaded on their own, never inside another.")
