"""Checks on one image: a full decode within the pixel limit, EXIF orientation, no web page
code hidden in its metadata or after its end, and a WebP thumbnail.

Everything here works on a local file and raises Rejected with a reason a person understands.
"""

from __future__ import annotations

import re
import struct
import warnings
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError

from app.datasets.limits import MAX_IMAGE_PIXELS, THUMBNAIL_SIZE
from jobs.ingest.facts import MediaFacts, Rejected, webp_thumbnail
from jobs.ingest.formats import FORMAT_NAMES, PIL_FORMATS

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
