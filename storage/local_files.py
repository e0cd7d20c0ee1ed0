"""File-system layout of the local backend: safe key paths, atomic writes, per-object metadata."""

from __future__ import annotations

import contextlib
import hashlib
import json
import mimetypes
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage.base import (
    STREAM_CHUNK_SIZE,
    InvalidKey,
    ObjectInfo,
    PayloadTooLarge,
    Readable,
    StorageError,
    validate_key,
)

META_DIR = ".meta"
TMP_DIR = ".tmp"
MULTIPART_DIR = ".multipart"
# Top-level names the backend keeps for itself; a key may not start with them.
RESERVED_TOP = frozenset({META_DIR, TMP_DIR, MULTIPART_DIR})
STALE_TEMP_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """A finished temporary file ready to be moved into place."""

    path: Path
    size: int
    md5: bytes


class ObjectFiles:
    """Maps keys to files under root: data at root/<key>, metadata at root/.meta/<key>."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        for name in RESERVED_TOP:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self._sweep_stale_temp()

    def _sweep_stale_temp(self) -> None:
        # Temp files outlive their writer only if the process died mid-write; a day-old one is
        # certainly abandoned, a younger one may belong to another process writing right now.
        cutoff = time.time() - STALE_TEMP_S
        for entry in os.scandir(self.root / TMP_DIR):
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)

    def data_path(self, key: str) -> Path:
        """Return the data file path of a valid key; raises InvalidKey for reserved names."""
        return self._under(self.root, key)

    def meta_path(self, key: str) -> Path:
        """Return the metadata file path of a valid key."""
        return self._under(self.root / META_DIR, key)

    def _under(self, base: Path, key: str) -> Path:
        validate_key(key)
        if key.split("/", 1)[0] in RESERVED_TOP:
            raise InvalidKey(f"key uses a name the local backend reserves: {key!r}")
        path = base / key
        # validate_key already rules out '..' and absolute keys; this also catches symlinks
        # planted inside root that point outside it.
        if not path.resolve().is_relative_to(self.root):
            raise InvalidKey(f"key resolves outside the storage root: {key!r}")
        return path

    def write_temp(
        self, chunks: Iterable[bytes], max_bytes: int | None = None, durable: bool = True
    ) -> WrittenFile:
        """Copy chunks into a new temporary file under root, hashing and counting as it goes."""
        fd, name = tempfile.mkstemp(dir=self.root / TMP_DIR, prefix="w-")
        digest, size = hashlib.md5(usedforsecurity=False), 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise PayloadTooLarge(f"upload is larger than {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                if durable:
                    # Survive a power cut once the caller's rename has happened.
                    out.flush()
                    os.fsync(out.fileno())
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return WrittenFile(Path(name), size, digest.digest())

    def commit(self, key: str, written: WrittenFile, etag: str, content_type: str | None) -> None:
        """Move a finished temporary file into place as key, then record its metadata."""
        data_path, meta_path = self.data_path(key), self.meta_path(key)
        stat = written.path.stat()
        meta = {
            "etag": etag,
            "content_type": content_type,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
        }
        # The sidecar is a cache that info() rebuilds when stale, so it skips the fsync.
        meta_temp = self.write_temp([json.dumps(meta).encode("utf-8")], durable=False)
        try:
            # Readers see either the old object or the new one, never a partial file.
            self._replace(written.path, data_path)
            self._replace(meta_temp.path, meta_path)
        finally:
            written.path.unlink(missing_ok=True)
            meta_temp.path.unlink(missing_ok=True)

    def _replace(self, source: Path, target: Path) -> None:
        # A concurrent delete may prune the parent directory between mkdir and replace.
        for _attempt in range(3):
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_dir():
                    raise StorageError(f"{target.name!r} is already a prefix of other keys")
                os.replace(source, target)
                return
            except FileNotFoundError:
                continue
            except (NotADirectoryError, FileExistsError) as exc:
                raise StorageError(
                    "key conflicts with an existing object used as a prefix"
                ) from exc
        raise StorageError(f"could not place {target.name!r}: its folder keeps disappearing")

    def info(self, key: str, with_content_type: bool = True) -> ObjectInfo | None:
        """Return the object's metadata, recomputing the ETag if the sidecar is stale."""
        data_path = self.data_path(key)
        try:
            stat = data_path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not data_path.is_file():
            return None
        meta = self._read_meta(key)
        fresh = meta.get("size") == stat.st_size and meta.get("mtime_ns") == stat.st_mtime_ns
        if fresh:
            stored_type = meta.get("content_type")
            etag = str(meta["etag"])
            content_type = stored_type if isinstance(stored_type, str) else None
        else:
            # Written outside this backend, or a racing writer won only one of the two renames.
            etag, content_type = file_md5(data_path).hex(), mimetypes.guess_type(key)[0]
        return ObjectInfo(
            key=key,
            size=stat.st_size,
            etag=etag,
            last_modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            content_type=content_type if with_content_type else None,
        )

    def _read_meta(self, key: str) -> dict[str, object]:
        try:
            meta = json.loads(self.meta_path(key).read_bytes())
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def remove(self, key: str) -> bool:
        """Delete the object's files and prune folders left empty; True if it existed."""
        data_path = self.data_path(key)
        existed = data_path.is_file()
        if existed:
            data_path.unlink(missing_ok=True)
        meta_path = self.meta_path(key)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
            meta_path.unlink()
        self._prune(data_path.parent, self.root)
        self._prune(meta_path.parent, self.root / META_DIR)
        return existed

    @staticmethod
    def _prune(folder: Path, stop: Path) -> None:
        # Empty folders would block a later key of the same name and slow listings.
        while folder != stop and folder.is_relative_to(stop):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def keys(self, prefix: str) -> list[str]:
        """Return every stored key starting with prefix, sorted as S3 sorts them."""
        # Only the folder named by the prefix's complete segments can hold matches.
        folder_part = prefix.rpartition("/")[0]
        if folder_part.split("/", 1)[0] in RESERVED_TOP:
            return []
        start = self.root / folder_part if folder_part else self.root
        skip = frozenset() if folder_part else RESERVED_TOP
        found = [
            key
            for path in _walk_files(start, skip)
            if (key := path.relative_to(self.root).as_posix()).startswith(prefix)
        ]
        return sorted(found)


def _walk_files(start: Path, skip: frozenset[str]) -> Iterator[Path]:
    try:
        entries = list(os.scandir(start))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.name in skip:
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk_files(Path(entry.path), frozenset())
        elif entry.is_file(follow_symlinks=False):
            yield Path(entry.path)


def file_md5(path: Path) -> bytes:
    """Return the MD5 digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(STREAM_CHUNK_SIZE):
            digest.update(chunk)
    return digest.digest()


def read_chunks(source: bytes | Readable, chunk_size: int = STREAM_CHUNK_SIZE) -> Iterator[bytes]:
    """Yield bytes as one chunk, or a readable's content in chunks until EOF."""
    if isinstance(source, bytes | bytearray | memoryview):
        yield bytes(source)
        return
    while chunk := source.read(chunk_size):
        yield chunk
