"""Hostile uploads: each is rejected with a reason a person understands, nothing is left in
storage, and checking them all keeps memory bounded."""

from __future__ import annotations

import http.server
import json
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from jobs.datasets import ingest_item
from jobs.ingest.facts import Rejected
from jobs.ingest.zip import ArchiveLimits, ArchiveReader
from tests.support.media_files import (
    clip_file,
    items_of,
    jpeg_bytes,
    pixel_flood_png,
    png_bytes,
    png_chunk,
    stored_keys,
    uploaded_item,
    zip_bytes,
)

MB = 1024 * 1024


def declared_sizes(archive: bytes, size: int) -> bytes:
    """The zip with every central-directory entry claiming `size` uncompressed bytes."""
    data = bytearray(archive)
    offset = data.find(b"PK\x01\x02")
    while offset >= 0:
        struct.pack_into("<I", data, offset + 24, size)
        offset = data.find(b"PK\x01\x02", offset + 4)
    return bytes(data)


def lying_zip() -> bytes:
    """An entry whose headers say 1 KB but whose data inflates to 60 MB."""
    honest = zip_bytes([("small.png", b"\0" * (60 * MB))])
    data = bytearray(declared_sizes(honest, 1024))
    struct.pack_into("<I", data, data.find(b"PK\x03\x04") + 22, 1024)  # local header too
    return bytes(data)


def truncated_jpeg() -> bytes:
    whole = jpeg_bytes((256, 256))
    return whole[: len(whole) // 2]


def polyglot_comment_jpeg() -> bytes:
    return jpeg_bytes(comment=b"<html><script>alert(document.cookie)</script></html>")


def polyglot_trailing_png() -> bytes:
    return png_bytes() + b"<html><body><script>fetch('/api')</script></body></html>"


def polyglot_text_chunk_png() -> bytes:
    data = png_bytes()
    end = data.rfind(b"IEND") - 4
    text = png_chunk(b"tEXt", b"Comment\x00<svg onload=alert(1)><script>x()</script></svg>")
    return data[:end] + text + data[end:]


HOSTILE_FILES = {
    # name: (bytes, what the reason must say)
    "flood.png": (pixel_flood_png(), "more than 40 megapixels"),
    "cut.jpg": (truncated_jpeg(), "damaged or cut short"),
    "comment.jpg": (polyglot_comment_jpeg(), "hidden web page code"),
    "trailing.png": (polyglot_trailing_png(), "hidden web page code"),
    "text-chunk.png": (polyglot_text_chunk_png(), "hidden web page code"),
    "page.jpg": (b"<!DOCTYPE html><html><script>alert(1)</script>" + jpeg_bytes(), "web page"),
    "lies.jpg": (png_bytes(), "is a PNG image but its name ends in “.jpg”"),
    "empty.png": (b"", "The file is empty"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_hostile_images_are_rejected_and_deleted(ingest_app: Flask, name: str) -> None:
    data, reason = HOSTILE_FILES[name]
    item = uploaded_item(name, data)
    assert ingest_item(item) == "rejected"
    assert reason in (item.reject_reason or ""), item.reject_reason
    assert stored_keys(item.dataset_id) == []
    assert item.thumbnail_key is None


@pytest.fixture
def network_spy() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request made to it."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


@pytest.mark.parametrize("variant", ["playlist", "mp4-wrapped-playlist", "concat"])
def test_videos_that_reference_the_network_are_rejected_unfollowed(
    ingest_app: Flask,
    network_spy: tuple[str, list[str]],
    variant: str,
) -> None:
    url, hits = network_spy
    playlist = (
        f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{url}/segment0.ts\n#EXT-X-ENDLIST\n"
    ).encode()
    data, name = {
        "playlist": (playlist, "stream.mp4"),
        # An ftyp box up front passes the magic-byte check; the demuxer is still fixed to MP4.
        "mp4-wrapped-playlist": (struct.pack(">I", 16) + b"ftypisom\0\0\0\0" + playlist, "x.mp4"),
        "concat": (f"ffconcat version 1.0\nfile '{url}/clip.mp4'\n".encode(), "list.mov"),
    }[variant]
    item = uploaded_item(name, data)
    assert ingest_item(item) == "rejected"
    reason = item.reject_reason or ""
    assert "playlist" in reason or "not a readable MP4" in reason, reason
    assert hits == []
    assert stored_keys(item.dataset_id) == []


@pytest.mark.parametrize(
    ("entries", "symlinks", "reason"),
    [
        ([("../../outside.jpg", b"x")], (), "leads outside its folder"),
        ([("/etc/cron.d/evil.jpg", b"x")], (), "absolute path"),
        ([("ok.jpg", jpeg_bytes()), ("link.jpg", b"/etc/passwd")], ("link.jpg",), "symbolic link"),
        ([("inner.zip", zip_bytes([("a.jpg", b"x")]))], (), "another archive"),
    ],
)
def test_unsafe_zips_are_refused_whole(
    ingest_app: Flask,
    entries: list[tuple[str, bytes]],
    symlinks: tuple[str, ...],
    reason: str,
) -> None:
    item = uploaded_item("unsafe.zip", zip_bytes(entries, symlinks))
    dataset_id = item.dataset_id
    assert ingest_item(item) == "rejected"
    assert reason in (item.reject_reason or ""), item.reject_reason
    assert [i.status for i in items_of(dataset_id)] == ["rejected"]  # no entry became an item
    assert stored_keys(dataset_id) == []


def test_zip_bombs_are_refused_whole(ingest_app: Flask) -> None:
    bomb = declared_sizes(zip_bytes([(f"{n}.mp4", b"\0" * MB) for n in range(3)]), 4_000_000_000)
    item = uploaded_item("bomb.zip", bomb)
    assert ingest_item(item) == "rejected"
    assert "unpacks to more than 10.0 GB" in (item.reject_reason or "")
    assert stored_keys(item.dataset_id) == []

    liar = uploaded_item("liar.zip", lying_zip())
    assert ingest_item(liar) == "rejected"
    assert "damaged" in (liar.reject_reason or "") or "zip bomb" in (liar.reject_reason or "")
    assert stored_keys(liar.dataset_id) == []


def test_unpacked_bytes_are_counted_against_the_archive_limit(tmp_path: Path) -> None:
    archive = tmp_path / "many.zip"
    archive.write_bytes(zip_bytes([(f"{n}.mp4", b"\0" * (3 * MB)) for n in range(4)]))
    with pytest.raises(Rejected, match="unpacks to more than 10 MB"):
        ArchiveReader(archive, tmp_path, ArchiveLimits(max_unpacked_bytes=10 * MB))
    with pytest.raises(Rejected, match="holds 4 files; the limit is 3"):
        ArchiveReader(archive, tmp_path, ArchiveLimits(max_entries=3))


def test_bad_entries_are_rejected_one_by_one(ingest_app: Flask) -> None:
    archive = zip_bytes(
        [
            ("good.jpg", jpeg_bytes()),
            ("empty.jpg", b""),
            ("flood.png", pixel_flood_png()),
            ("lies.webp", jpeg_bytes()),
            ("huge.png", b"\0" * (51 * MB)),
        ]
    )
    item = uploaded_item("mixed.zip", archive)
    dataset_id = item.dataset_id
    assert ingest_item(item) == "unpacked"
    found = {i.filename: i for i in items_of(dataset_id)}
    assert found["good.jpg"].status == "ready"
    assert "empty" in (found["empty.jpg"].reject_reason or "")
    assert "40 megapixels" in (found["flood.png"].reject_reason or "")
    assert "JPEG image but its name ends" in (found["lies.webp"].reject_reason or "")
    assert "Larger than 50 MB" in (found["huge.png"].reject_reason or "")
    assert len(stored_keys(dataset_id)) == 2  # only the good entry and its thumbnail


def test_checking_hostile_files_keeps_memory_bounded(tmp_path: Path) -> None:
    names = {}
    for name, (data, _) in HOSTILE_FILES.items():
        names[name] = tmp_path / name
        names[name].write_bytes(data)
    (tmp_path / "liar.zip").write_bytes(lying_zip())
    clip_file(tmp_path / "fine.mp4")
    script = f"""
import json, resource, sys
from pathlib import Path
from jobs.ingest.check import check_file
from jobs.ingest.facts import Rejected
from jobs.ingest.zip import ArchiveReader
paths = {json.dumps([str(p) for p in names.values()] + [str(tmp_path / "fine.mp4")])}
for path in paths:
    try:
        check_file(Path(path), Path(path).suffix)
    except Rejected:
        pass
try:
    reader = ArchiveReader(Path({str(tmp_path / "liar.zip")!r}), Path({str(tmp_path)!r}))
    list(reader.media())
except Rejected:
    pass
# VmHWM is this process image's own peak; ru_maxrss would also count the forking pytest
# process, whose size Linux carries across exec.
status = Path("/proc/self/status").read_text()
print(int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM:"))) // 1024)
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
        timeout=120,
    )
    peak_mb = int(result.stdout.strip().splitlines()[-1])
    # A 3.6-gigapixel flood would need over 10 GB decoded; the lying zip inflates to 60 MB.
    assert peak_mb < 300, f"peak RSS {peak_mb} MB"
