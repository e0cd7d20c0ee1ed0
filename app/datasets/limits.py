"""What a dataset file may be: accepted types and the limits of PRODUCT.md, in one place.

The web side checks names and declared sizes before anything is presigned; the ingest job
(jobs/) checks the bytes themselves against the same numbers.
"""

from __future__ import annotations

import posixpath
from typing import NamedTuple

MB = 1024**2
GB = 1024**3


class FileKind(NamedTuple):
    """What an extension stands for: media kind, stored content type, largest size."""

    media_kind: str  # "image", "video" or "archive"
    content_type: str
    max_bytes: int


ACCEPTED_FILES: dict[str, FileKind] = {
    ".jpg": FileKind("image", "image/jpeg", 50 * MB),
    ".jpeg": FileKind("image", "image/jpeg", 50 * MB),
    ".png": FileKind("image", "image/png", 50 * MB),
    ".webp": FileKind("image", "image/webp", 50 * MB),
    ".mp4": FileKind("video", "video/mp4", 2 * GB),
    ".mov": FileKind("video", "video/quicktime", 2 * GB),
    ".webm": FileKind("video", "video/webm", 2 * GB),
    ".zip": FileKind("archive", "application/zip", 10 * GB),
}
CAPTION_EXTENSION = ".txt"

# Images
MAX_IMAGE_PIXELS = 40_000_000
# Videos: at most 60 s and 4K (the longer side at most 4096 px, the shorter at most 2160 px).
MAX_VIDEO_SECONDS = 60.0
MAX_VIDEO_LONG_SIDE = 4096
MAX_VIDEO_SHORT_SIDE = 2160
# Zips
MAX_ARCHIVE_ENTRIES = 5_000
MAX_ARCHIVE_UNPACKED_BYTES = 10 * GB
# Captions
MAX_CAPTION_CHARS = 2_000
# UTF-8 needs at most 4 bytes a character; a longer .txt cannot hold a valid caption.
MAX_CAPTION_BYTES = 4 * MAX_CAPTION_CHARS

# Multipart: every part but the last has exactly this size; smaller files go in one PUT.
PART_SIZE = 16 * MB
SINGLE_PUT_LIMIT = PART_SIZE

THUMBNAIL_SIZE = (256, 256)


def extension_of(name: str) -> str:
    """The lower-cased extension of a file name or path, '' when it has none."""
    return posixpath.splitext(name)[1].lower()


def accepted_list() -> str:
    """The accepted extensions, for messages."""
    return ", ".join(sorted(ACCEPTED_FILES))


def megabytes(size: int) -> str:
    """A size for people: '512 KB', '48 MB', '2.0 GB'."""
    if size >= GB:
        return f"{size / GB:.1f} GB"
    if size >= MB:
        return f"{size / MB:.0f} MB"
    return f"{max(1, round(size / 1024))} KB" if size else "0 KB"
