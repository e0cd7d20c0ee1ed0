"""Real media files made on the spot for ingest tests: JPEG/PNG/clip/zip bytes, hostile ones
included, and a way to put an upload in front of the ingest job."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from app.accounts.models import User
from app.datasets.limits import ACCEPTED_FILES
from app.datasets.models import Dataset, DatasetItem
from app.db_types import utcnow
from app.extensions import db, get_storage


def jpeg_bytes(size: tuple[int, int] = (64, 48), orientation: int = 1, **save: object) -> bytes:
    """A small real JPEG (a gradient), with an EXIF orientation tag."""
    x = np.linspace(0, 255, size[0], dtype=np.uint8)
    pixels = np.stack([np.tile(x, (size[1], 1))] * 3, axis=-1)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    options = {"quality": 90, **save}
    Image.fromarray(pixels).save(buffer, "JPEG", exif=exif.tobytes(), **options)
    return buffer.getvalue()


def png_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    """A small real PNG."""
    buffer = io.BytesIO()
    Image.effect_noise(size, 30).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def noise_png_bytes(size: tuple[int, int] = (32, 32), seed: int = 1) -> bytes:
    """A small noise PNG whose bytes differ with `seed` (no two seeded files alike)."""
    buffer = io.BytesIO()
    Image.effect_noise(size, 40 + seed).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pixel_flood_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A tiny PNG whose header claims billions of pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )


def clip_file(
    path: Path,
    frames: int = 12,
    size: tuple[int, int] = (64, 48),
    fps: int = 12,
    codec: str | None = None,
    bit_rate: int | None = None,
) -> Path:
    """A real clip encoded with PyAV; the container follows the suffix (.mp4, .mov, .webm)."""
    container_format = {".mp4": "mp4", ".mov": "mov", ".webm": "webm"}[path.suffix]
    codec = codec or ("libvpx-vp9" if container_format == "webm" else "mpeg4")
    options = {"qmin": "1", "qmax": "2"} if bit_rate else {}
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=Fraction(fps), options=options)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        if bit_rate:
            stream.bit_rate = bit_rate
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(base, index * 7, axis=1), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def zip_bytes(entries: list[tuple[str, bytes]], symlinks: tuple[str, ...] = ()) -> bytes:
    """A zip of (name, bytes) entries; names in symlinks are stored as symbolic links."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name in symlinks:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, data)
    return buffer.getvalue()


# --- an upload waiting for the ingest job -----------------------------------------------------


def uploaded_item(name: str, data: bytes, user_email: str = "ada@example.com") -> DatasetItem:
    """An item whose bytes have arrived, as complete_upload leaves it (status 'uploaded')."""
    user = db.session.query(User).filter_by(email=user_email).one_or_none()
    if user is None:
        user = User(email=user_email, name="Ada", adult_confirmed_at=utcnow())
        db.session.add(user)
        db.session.flush()
    dataset = Dataset(user_id=user.id, name="Test")
    db.session.add(dataset)
    db.session.flush()
    extension = Path(name).suffix.lower()
    kind = ACCEPTED_FILES[extension]
    item = DatasetItem(
        dataset_id=dataset.id,
        filename=name,
        content_type=kind.content_type,
        media_kind=kind.media_kind,
        size_bytes=len(data),
        storage_key="",
        status="uploaded",
    )
    db.session.add(item)
    db.session.flush()
    item.upload_key = item.upload_object_key(extension)
    get_storage().put(item.upload_key, data, kind.content_type)
    db.session.commit()
    return item


def stored_keys(dataset_id: int) -> list[str]:
    """Every object left under the dataset's prefix."""
    dataset = db.session.get(Dataset, dataset_id)
    assert dataset is not None
    return [info.key for info in get_storage().list(dataset.storage_prefix())]


def items_of(dataset_id: int) -> list[DatasetItem]:
    """The dataset's items, fresh from the database."""
    db.session.expire_all()
    return list(db.session.query(DatasetItem).filter_by(dataset_id=dataset_id).order_by("id"))


# An SVG with script, named like a picture: ingest must refuse it.
HOSTILE_SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">' + (
    b"<script>fetch('/api/runs')</script></svg>"
)
