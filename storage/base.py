"""The storage interface every backend implements, its value types, errors and key rules."""

from __future__ import annotations

import builtins
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol, runtime_checkable
from urllib.parse import quote

MAX_KEY_BYTES = 1024
# File systems (and SeaweedFS's filer) cap one path segment at 255 bytes; S3 does not, but a key
# that only some backends can store would pass tests on one and fail in production on another.
MAX_SEGMENT_BYTES = 255
# S3 limits, applied by every backend so that code tested on one behaves the same on the others.
MAX_PART_NUMBER = 10_000
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
STREAM_CHUNK_SIZE = 1024 * 1024


class StorageError(Exception):
    """Any failure of the storage backend."""


class ObjectNotFound(StorageError):
    """The key names no object."""


class InvalidKey(StorageError, ValueError):
    """The key breaks the key rules (see validate_key)."""


class UploadNotFound(StorageError):
    """The multipart upload id is unknown, completed or aborted."""


class InvalidPart(StorageError):
    """A part given to complete_multipart is missing, out of order, too small or mismatched."""


class InvalidToken(StorageError):
    """A local-backend token is malformed, forged, expired or meant for another action."""


class PayloadTooLarge(StorageError):
    """An upload sent more bytes than the caller allowed."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a backend knows about one stored object; content_type is None in listings."""

    key: str
    size: int
    etag: str
    last_modified: datetime
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class MultipartUpload:
    """An unfinished multipart upload."""

    key: str
    upload_id: str
    initiated: datetime


@dataclass(frozen=True, slots=True)
class PartRef:
    """One uploaded part: its number, its ETag (unquoted) and, when listed, its size."""

    number: int
    etag: str
    size: int | None = None


class Readable(Protocol):
    """Anything read() can drain: an open file, a request body, an HTTP response."""

    def read(self, size: int = -1, /) -> bytes:
        """Return up to size bytes; b"" at the end."""
        ...


class ClosableReadable(Readable, Protocol):
    """A Readable that holds a file or connection to release."""

    def close(self) -> None:
        """Release the file or connection."""
        ...


@runtime_checkable
class Storage(Protocol):
    """Object storage as Attune uses it: flat keys, whole objects, presigned browser transfers."""

    def put(self, key: str, data: bytes | Readable, content_type: str | None = None) -> None:
        """Store bytes or the rest of a readable stream under key, replacing any object."""
        ...

    def upload_file(self, key: str, path: Path | str, content_type: str | None = None) -> None:
        """Store a local file under key (multipart for large files where the backend has it)."""
        ...

    def get(self, key: str) -> bytes:
        """Return the whole object; raises ObjectNotFound."""
        ...

    def download_file(self, key: str, path: Path | str) -> None:
        """Write the object to a local file; raises ObjectNotFound."""
        ...

    def open_stream(self, key: str, chunk_size: int = STREAM_CHUNK_SIZE) -> ChunkStream:
        """Open the object for reading in chunks; raises ObjectNotFound before any chunk."""
        ...

    def stat(self, key: str) -> ObjectInfo | None:
        """Return the object's metadata, or None when there is no such object."""
        ...

    def copy(self, source_key: str, target_key: str) -> None:
        """Copy one object inside storage (no bytes pass through this process on S3), with its
        content type; the copy is of one consistent state of the source. Raises ObjectNotFound."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object and every stored version of it; a missing key is not an error."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object, version and unfinished upload under prefix; return keys removed."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield the objects under prefix in key order, fetching pages lazily."""
        ...

    def create_multipart(self, key: str, content_type: str | None = None) -> str:
        """Start a multipart upload and return its upload id."""
        ...

    def presign_part(self, key: str, upload_id: str, part_number: int, expires_in: int) -> str:
        """Return a URL the browser PUTs one part to; the response's ETag header names the part."""
        ...

    def list_parts(self, key: str, upload_id: str) -> builtins.list[PartRef]:
        """Return the parts received so far, by number, with sizes; raises UploadNotFound."""
        ...

    def complete_multipart(self, key: str, upload_id: str, parts: Sequence[PartRef]) -> None:
        """Join the given parts into the object; raises UploadNotFound or InvalidPart."""
        ...

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an unfinished upload and its parts; an unknown upload id is not an error."""
        ...

    def list_multipart_uploads(self, prefix: str = "") -> builtins.list[MultipartUpload]:
        """Return the unfinished uploads whose key starts with prefix."""
        ...

    def presign_put(self, key: str, content_type: str, expires_in: int) -> str:
        """Return a URL for one PUT of a small file; the PUT must send this Content-Type."""
        ...

    def revoke_upload_urls(self, prefix: str) -> int:
        """Make the single-PUT URLs handed out for keys under prefix stop working where the
        backend keeps state for them (local); S3 cannot revoke a presigned URL. Returns how
        many were revoked."""
        ...

    def presign_download(self, key: str, expires_in: int, filename: str) -> str:
        """Return a short-lived URL that downloads the object as an attachment named filename."""
        ...


class ChunkStream(Iterator[bytes]):
    """Iterates a readable in chunks and closes it when exhausted, closed or garbage-collected."""

    def __init__(self, readable: ClosableReadable, chunk_size: int = STREAM_CHUNK_SIZE) -> None:
        self._readable = readable
        self._chunk_size = chunk_size

    def __next__(self) -> bytes:
        chunk = self._readable.read(self._chunk_size)
        if not chunk:
            self.close()
            raise StopIteration
        return chunk

    def read_all(self) -> bytes:
        """Read the remaining bytes and close."""
        return b"".join(self)

    def close(self) -> None:
        """Release the underlying file or connection; safe to call twice."""
        self._readable.close()

    def __enter__(self) -> ChunkStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def validate_key(key: str) -> str:
    """Return key unchanged if it is a safe object key, else raise InvalidKey."""
    if not isinstance(key, str) or not key:
        raise InvalidKey("key must be a non-empty string")
    _check_path_text(key, what="key")
    if key.endswith("/"):
        raise InvalidKey(f"key must not end with '/': {key!r}")
    return key


def validate_prefix(prefix: str, *, allow_empty: bool = True) -> str:
    """Return prefix unchanged if it is a safe key prefix ('' or ending in '/' allowed)."""
    if not isinstance(prefix, str):
        raise InvalidKey("prefix must be a string")
    if not prefix:
        if allow_empty:
            return prefix
        raise InvalidKey("prefix must not be empty here")
    _check_path_text(prefix.removesuffix("/"), what="prefix")
    return prefix


def _check_path_text(text: str, what: str) -> None:
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidKey(f"{what} is longer than {MAX_KEY_BYTES} bytes")
    if text.startswith("/"):
        raise InvalidKey(f"{what} must not start with '/': {text!r}")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        raise InvalidKey(f"{what} contains a control character: {text!r}")
    # A backslash is a separator on Windows file systems and in some S3 tools; refuse it everywhere.
    if "\\" in text:
        raise InvalidKey(f"{what} contains a backslash: {text!r}")
    for segment in text.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKey(f"{what} has an empty, '.' or '..' segment: {text!r}")
        if len(segment.encode("utf-8", errors="surrogatepass")) > MAX_SEGMENT_BYTES:
            raise InvalidKey(f"{what} has a segment longer than {MAX_SEGMENT_BYTES} bytes")


def validate_part_number(part_number: int) -> int:
    """Return part_number if it lies in S3's 1..10000 range, else raise ValueError."""
    if isinstance(part_number, bool) or not isinstance(part_number, int):
        raise ValueError("part_number must be an int")
    if not 1 <= part_number <= MAX_PART_NUMBER:
        raise ValueError(f"part_number must be between 1 and {MAX_PART_NUMBER}")
    return part_number


def validate_expires_in(expires_in: int) -> int:
    """Return expires_in if it is 1 second to 7 days (SigV4's limit), else raise ValueError."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, int):
        raise ValueError("expires_in must be an int number of seconds")
    if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
        raise ValueError(f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds")
    return expires_in


def check_part_order(parts: Sequence[PartRef]) -> list[PartRef]:
    """Return parts if numbers are valid and strictly ascending, else raise InvalidPart."""
    if not parts:
        raise InvalidPart("a multipart upload needs at least one part")
    previous = 0
    for part in parts:
        validate_part_number(part.number)
        if part.number <= previous:
            raise InvalidPart("parts must be listed in strictly ascending part-number order")
        previous = part.number
    return list(parts)


def normalize_etag(etag: str) -> str:
    """Return the ETag without surrounding quotes (S3 sends them, browsers keep them)."""
    return etag.strip().strip('"')


# RFC 5987 attr-char minus ALPHA/DIGIT: what may stay unescaped in filename*=UTF-8''...
_ATTR_CHAR_SAFE = "!#$&+-.^_`|~"


def attachment_disposition(filename: str) -> str:
    """Build a Content-Disposition attachment header value that is safe for any filename."""
    # Drop control characters (CR/LF would split the header) and path separators browsers strip.
    cleaned = "".join(
        " " if ch in "/\\" else ch for ch in filename if unicodedata.category(ch)[0] != "C"
    ).strip()
    cleaned = cleaned or "download"
    fallback = _ascii_fallback(cleaned)
    if fallback == cleaned:
        return f'attachment; filename="{fallback}"'
    encoded = quote(cleaned, safe=_ATTR_CHAR_SAFE, encoding="utf-8")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def _ascii_fallback(name: str) -> str:
    # Old clients only read filename=; give them the name without accents, quotes or backslashes.
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    folded = folded.replace('"', "'").replace("%", "_")
    return folded.strip() or "download"
