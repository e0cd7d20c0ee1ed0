"""Uploads on the local backend: multipart uploads under root/.multipart/<upload_id>/, and the
records behind presigned single PUTs under root/.multipart/single/<upload_id>.json, which let a
PUT URL name a random id instead of its key (they lapse with their URL)."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage.base import (
    MIN_PART_SIZE,
    STREAM_CHUNK_SIZE,
    InvalidPart,
    MultipartUpload,
    PartRef,
    Readable,
    UploadNotFound,
    check_part_order,
    normalize_etag,
    validate_part_number,
)
from storage.local_files import MULTIPART_DIR, ObjectFiles, file_md5, read_chunks

_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{32}")
_RECORD = "upload.json"
# Not a valid upload id, so listing multipart uploads passes over it.
_SINGLE_DIR = "single"


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """What create_multipart wrote down about an upload."""

    key: str
    upload_id: str
    content_type: str | None
    initiated: datetime


class LocalUploads:
    """Creates, fills, joins and drops multipart uploads (each part one file named by number),
    and keeps the records of single PUTs."""

    def __init__(self, files: ObjectFiles, clock: Callable[[], float] = time.time) -> None:
        self._files = files
        self._base = files.root / MULTIPART_DIR
        self._single = self._base / _SINGLE_DIR
        self._single.mkdir(exist_ok=True)
        self._clock = clock

    def create(self, key: str, content_type: str | None) -> str:
        """Start an upload for a valid key and return its id."""
        self._files.data_path(key)  # validates the key before anything is written
        upload_id = secrets.token_urlsafe(24)
        folder = self._base / upload_id
        folder.mkdir()
        record = {
            "key": key,
            "content_type": content_type,
            "initiated": datetime.now(UTC).isoformat(),
        }
        written = self._files.write_temp([json.dumps(record).encode("utf-8")])
        written.path.replace(folder / _RECORD)
        return upload_id

    def record(self, upload_id: str, key: str | None = None) -> UploadRecord:
        """Return the upload's record; raises UploadNotFound if absent or not for key."""
        if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
            raise UploadNotFound("no such upload")
        try:
            data = json.loads((self._base / upload_id / _RECORD).read_bytes())
        except (FileNotFoundError, ValueError) as exc:
            raise UploadNotFound("no such upload") from exc
        if key is not None and data["key"] != key:
            # S3 answers NoSuchUpload when the id belongs to another key; do the same.
            raise UploadNotFound("no such upload for this key")
        initiated = datetime.fromisoformat(data["initiated"])
        return UploadRecord(data["key"], upload_id, data.get("content_type"), initiated)

    def create_single(self, key: str, content_type: str | None, until: int) -> str:
        """Record the key and content type one presigned PUT writes, until its URL lapses."""
        self._files.data_path(key)  # validates the key before anything is written
        upload_id = secrets.token_urlsafe(24)
        record = {"key": key, "content_type": content_type, "until": until}
        written = self._files.write_temp([json.dumps(record).encode("utf-8")])
        written.path.replace(self._single / f"{upload_id}.json")
        return upload_id

    def single_target(self, upload_id: str) -> tuple[str, str | None] | None:
        """Return the key and content type a single PUT writes, or None once it has lapsed."""
        if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
            return None
        try:
            record = json.loads((self._single / f"{upload_id}.json").read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        if record["until"] <= self._clock():
            return None
        return record["key"], record.get("content_type")

    def sweep_single(self) -> None:
        """Remove the records of single PUTs whose URLs have lapsed."""
        now = self._clock()
        for path in self._single.glob("*.json"):
            try:
                lapsed = json.loads(path.read_bytes())["until"] <= now
            except (FileNotFoundError, ValueError, KeyError):
                continue
            if lapsed:
                path.unlink(missing_ok=True)

    def forget_singles(self, prefix: str) -> int:
        """Remove the records of single PUTs to keys under prefix (one scan of the records)."""
        forgotten = 0
        for path in self._single.glob("*.json"):
            try:
                key = json.loads(path.read_bytes())["key"]
            except (FileNotFoundError, ValueError, KeyError):
                continue
            if key.startswith(prefix):
                path.unlink(missing_ok=True)
                forgotten += 1
        return forgotten

    def key_of(self, upload_id: str) -> str | None:
        """Return the key an upload writes to, or None if there is no such upload."""
        try:
            return self.record(upload_id).key
        except UploadNotFound:
            return None

    def write_part(
        self, upload_id: str, part_number: int, stream: Readable, max_bytes: int
    ) -> PartRef:
        """Store one part from a readable, replacing an earlier try of the same part."""
        validate_part_number(part_number)
        self.record(upload_id)
        written = self._files.write_temp(read_chunks(stream), max_bytes=max_bytes)
        try:
            written.path.replace(self._part_path(upload_id, part_number))
        except FileNotFoundError as exc:
            # The upload was aborted or completed while this part streamed in.
            raise UploadNotFound("upload ended while the part was being written") from exc
        finally:
            written.path.unlink(missing_ok=True)
        return PartRef(part_number, written.md5.hex(), written.size)

    def list_parts(self, key: str, upload_id: str) -> list[PartRef]:
        """Return the stored parts by number, with their MD5 ETags and sizes."""
        self.record(upload_id, key)
        return [
            PartRef(number, file_md5(path).hex(), path.stat().st_size)
            for number, path in self._part_files(upload_id)
        ]

    def complete(self, key: str, upload_id: str, parts: Sequence[PartRef]) -> None:
        """Join the chosen parts, checking each one's ETag, into the object and end the upload."""
        record = self.record(upload_id, key)
        paths = self._checked_part_paths(upload_id, check_part_order(parts))
        digests: list[bytes] = []
        written = self._files.write_temp(_join_parts(paths, parts, digests))
        try:
            # The same ETag S3 gives a multipart object: md5 of the part digests, dash, count.
            joined = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
            etag = f"{joined}-{len(digests)}"
            self._files.commit(key, written, etag, record.content_type)
        finally:
            written.path.unlink(missing_ok=True)
        shutil.rmtree(self._base / upload_id, ignore_errors=True)

    def _checked_part_paths(self, upload_id: str, parts: list[PartRef]) -> list[Path]:
        paths = []
        for index, part in enumerate(parts):
            path = self._part_path(upload_id, part.number)
            try:
                size = path.stat().st_size
            except FileNotFoundError as exc:
                raise InvalidPart(f"part {part.number} was never uploaded") from exc
            if index < len(parts) - 1 and size < MIN_PART_SIZE:
                raise InvalidPart(f"part {part.number} is smaller than {MIN_PART_SIZE} bytes")
            paths.append(path)
        return paths

    def abort(self, key: str, upload_id: str) -> None:
        """Remove an upload and its parts; unknown ids and other keys' uploads are left alone."""
        try:
            self.record(upload_id, key)
        except UploadNotFound:
            return
        shutil.rmtree(self._base / upload_id, ignore_errors=True)

    def list_uploads(self, prefix: str) -> list[MultipartUpload]:
        """Return unfinished uploads whose key starts with prefix, by key then start time."""
        found = []
        for folder in self._base.iterdir():
            try:
                record = self.record(folder.name)
            except UploadNotFound:
                continue
            if record.key.startswith(prefix):
                found.append(MultipartUpload(record.key, record.upload_id, record.initiated))
        return sorted(found, key=lambda upload: (upload.key, upload.initiated))

    def _part_path(self, upload_id: str, part_number: int) -> Path:
        return self._base / upload_id / f"{part_number:05d}.part"

    def _part_files(self, upload_id: str) -> list[tuple[int, Path]]:
        return sorted((int(path.stem), path) for path in (self._base / upload_id).glob("*.part"))


def _join_parts(
    paths: list[Path], parts: Sequence[PartRef], digests: list[bytes]
) -> Iterator[bytes]:
    # Hash each part while copying so the ETag check costs no second read.
    for path, part in zip(paths, parts, strict=True):
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as handle:
            while chunk := handle.read(STREAM_CHUNK_SIZE):
                digest.update(chunk)
                yield chunk
        if digest.hexdigest() != normalize_etag(part.etag).lower():
            raise InvalidPart(f"part {part.number}'s ETag does not match what was uploaded")
        digests.append(digest.digest())
