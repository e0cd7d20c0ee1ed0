"""What a file's first bytes say it is, and whether its name tells the truth about that."""

from __future__ import annotations

import re
from pathlib import Path

from jobs.ingest.facts import Rejected

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
