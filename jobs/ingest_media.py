"""Checks on one file's bytes: what its first bytes say it is, whether that matches its name,
and for images a full decode within the pixel limit, EXIF orientation and a WebP thumbnail.

Everything here works on a local file and raises Rejected with a reason a person understands.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from app.datasets.limits import MAX_IMAGE_PIXELS, THUMBNAIL_SIZE

# Formats found by sniffing -> what people call them and the extension they should have.
FORMAT_NAMES = {
    "jpeg": ("a JPEG image", ".jpg"),
    "png": ("a PNG image", ".png"),
    "webp": ("a WebP image", ".webp"),
    "mp4": ("an MP4 video", ".mp4"),
    "mov": ("a QuickTime (MOV) video", ".mov"),
    "webm": ("a WebM video", ".webm"),
    "zip": ("a zip archive", ".zip"),
}
# Which sniffed formats each extension accepts (MP4 and MOV share one container family).
EXPECTED_FORMATS = {
    ".jpg": {"jpeg"},
    ".jpeg": {"jpeg"},
    ".png": {"png"},
    ".webp": {"webp"},
    ".mp4": {"mp4", "mov"},
    ".mov": {"mov", "mp4"},
    ".webm": {"webm"},
    ".zip": {"zip"},
}
PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
# HEIF/AVIF stills share MP4's ftyp box; told apart by brand so they are not called videos.
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif")
HEIF_REASON = (
    "This is a HEIC/HEIF or AVIF photo (the format iPhones save by default), which Attune "
    "cannot read. Export it as JPEG (on an iPhone: Settings, Camera, Formats, "
    "Most Compatible) and upload that."
)
SNIFF_BYTES = 64
_MOV_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
_PLAYLIST = re.compile(rb"^(#EXTM3U|ffconcat|<\?xml[^>]*>\s*<MPD|<MPD)", re.IGNORECASE)
_MARKUP_START = re.compile(rb"^(<!doctype html|<html|<head|<body|<script|<svg|<\?xml|<!--)", re.I)
# Markup that a browser would run or render if it ever treated the file as a page. Only checked
# in metadata and trailing bytes, never in compressed pixel data, so photos do not trip it.
_HIDDEN_MARKUP = re.compile(
    rb"<(script|html|body|iframe|object|embed|svg|meta|img)[\s>/]|javascript:|<\?php", re.I
)

HIDDEN_MARKUP_REASON = (
    "The image carries hidden web page code (HTML or script) in its metadata or after its "
    "end. Export it again from an image editor and upload the clean copy."
)

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a cut-short image is an error, never half a picture


class Rejected(Exception):
    """The file cannot be used; the message says why, for the person."""


@dataclass(frozen=True)
class MediaFacts:
    """What ingest learnt about a usable file."""

    media_kind: str  # "image" or "video"
    content_type: str
    width: int  # display orientation
    height: int
    thumbnail: bytes  # WebP
    duration_s: float | None = None
    fps: float | None = None
    frame_count: int | None = None


def sniff(path: Path) -> str:
    """The file's format from its first bytes; Rejected for empty, playlists, pages, unknowns."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head:
        raise Rejected("The file is empty.")
    found = _format_of(head)
    if found:
        return found
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if _PLAYLIST.match(text):
        raise Rejected(
            "This is a streaming playlist (HLS, DASH or a concat list), not a video. Playlists "
            "point at other files or web addresses, which are never followed; upload the video "
            "file itself."
        )
    if _MARKUP_START.match(text):
        raise Rejected(
            "This file is a web page or script (HTML, SVG or XML), not an image or video."
        )
    raise Rejected(
        "This is not a JPEG, PNG or WebP image, an MP4, MOV or WebM video, or a zip: "
        "its first bytes match none of them."
    )


def _format_of(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        if head[8:12] in HEIF_BRANDS:
            return "heif"
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head[4:8] in _MOV_ATOMS:
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in head else None  # other Matroska files are not accepted
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    return None


def check_format(path: Path, extension: str) -> str:
    """The sniffed format, if the file's extension tells the truth about it; else Rejected."""
    found = sniff(path)
    if found == "heif":
        raise Rejected(HEIF_REASON)
    if found not in EXPECTED_FORMATS.get(extension, set()):
        what, proper = FORMAT_NAMES[found]
        raise Rejected(
            f"This file is {what} but its name ends in “{extension or '(nothing)'}”. "
            f"Rename it to end in “{proper}” and upload it again."
        )
    return found


def check_file(path: Path, extension: str) -> MediaFacts:
    """Check a local file against its extension: sniffed format, then a full image decode or a
    video probe. Raises Rejected with the reason."""
    found = check_format(path, extension)
    if found in ("jpeg", "png", "webp"):
        return check_image(path, found)
    if found in ("mp4", "mov", "webm"):
        from jobs.ingest_video import check_video

        return check_video(path, found)
    raise Rejected("Archives are unpacked only when uploaded on their own, never inside another.")


def check_image(path: Path, image_format: str) -> MediaFacts:
    """Fully decode the image within the pixel limit; return its upright size and a thumbnail."""
    if find_hidden_markup(path, image_format):
        raise Rejected(HIDDEN_MARKUP_REASON)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path, formats=[PIL_FORMATS[image_format]]) as image:
                _check_pixels(image.width, image.height)
                image.load()
                if _markup_in_text(image.info.values()):
                    raise Rejected(HIDDEN_MARKUP_REASON)
                return _image_facts(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise Rejected(_too_many_pixels()) from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
            name = FORMAT_NAMES[image_format][0]
            raise Rejected(
                f"The file is not a complete, readable {name.removeprefix('a ')}: it is damaged "
                "or cut short."
            ) from exc


def _too_many_pixels() -> str:
    return f"The image has more than {MAX_IMAGE_PIXELS // 1_000_000} megapixels."


def _check_pixels(width: int, height: int) -> None:
    if width <= 0 or height <= 0 or width * height > MAX_IMAGE_PIXELS:
        raise Rejected(_too_many_pixels())


def _image_facts(image: Image.Image) -> MediaFacts:
    orientation = image.getexif().get(0x0112, 1)
    width, height = (image.height, image.width) if orientation in (5, 6, 7, 8) else image.size
    content_type = Image.MIME[image.format or "JPEG"]
    image.thumbnail(THUMBNAIL_SIZE, reducing_gap=2.0)  # already fully decoded above
    return MediaFacts("image", content_type, width, height, webp_thumbnail(image))


def webp_thumbnail(image: Image.Image) -> bytes:
    """An upright WebP of at most THUMBNAIL_SIZE (alpha kept where the image has it)."""
    upright = ImageOps.exif_transpose(image)
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    upright = upright.convert("RGBA" if has_alpha else "RGB")
    upright.thumbnail(THUMBNAIL_SIZE)
    buffer = io.BytesIO()
    upright.save(buffer, "WEBP", quality=80)
    return buffer.getvalue()


def _markup_in_text(values: object) -> bool:
    """True when decoded metadata text (PNG tEXt/zTXt/iTXt, JPEG comments) holds markup."""
    for value in values:  # type: ignore[attr-defined]
        if isinstance(value, str):
            value = value.encode("utf-8", "replace")
        if isinstance(value, bytes) and _HIDDEN_MARKUP.search(value):
            return True
    return False


def find_hidden_markup(path: Path, image_format: str) -> bool:
    """True when metadata or bytes after the image's end hold HTML or script."""
    data = path.read_bytes()
    regions = {"jpeg": _jpeg_regions, "png": _png_regions, "webp": _webp_regions}[image_format]
    try:
        chunks = regions(data)
    except (struct.error, IndexError, ValueError):
        return False  # a broken structure is the decoder's to report
    return any(_HIDDEN_MARKUP.search(chunk) for chunk in chunks)


def _jpeg_regions(data: bytes) -> list[bytes]:
    """Marker segments before the scan (APPn, COM, ...) and everything after the end marker."""
    regions, offset = [], 2
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        regions.append(data[offset + 4 : offset + 2 + length])
        offset += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
    end = data.find(b"\xff\xd9", offset)
    if end >= 0:
        regions.append(data[end + 2 :])
    return regions


def _png_regions(data: bytes) -> list[bytes]:
    """Every chunk but image data, and anything after IEND."""
    regions, offset = [], 8
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind != b"IDAT":
            regions.append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
        if kind == b"IEND":
            regions.append(data[offset:])
            break
    return regions


def _webp_regions(data: bytes) -> list[bytes]:
    """Every RIFF chunk but the bitstream ones, and anything after the RIFF size."""
    (riff_size,) = struct.unpack("<I", data[4:8])
    regions, offset, end = [data[8 + riff_size :]], 12, min(len(data), 8 + riff_size)
    while offset + 8 <= end:
        kind, length = struct.unpack("<4sI", data[offset : offset + 8])
        if kind not in (b"VP8 ", b"VP8L", b"ALPH", b"ANMF"):
            regions.append(data[offset + 8 : offset + 8 + length])
        offset += 8 + length + (length & 1)
    return regions
