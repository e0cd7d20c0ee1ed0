"""Local file-system backend for the embedded default; the app serves its signed URLs."""

from __future__ import annotations

import builtins
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from storage.base import (
    STREAM_CHUNK_SIZE,
    ChunkStream,
    MultipartUpload,
    ObjectInfo,
    ObjectNotFound,
    PartRef,
    Readable,
    validate_expires_in,
    validate_part_number,
    validate_prefix,
)
from storage.local_files import ObjectFiles, read_chunks
from storage.local_multipart import LocalUploads
from storage.local_tokens import TokenAction, TokenClaims, TokenSigner


class LocalStorage:
    """Objects as files under root; presigned URLs point at the app's /download and /upload routes.

    The app mounts two routes under base_url: GET {base_url}/download/<token> and
    PUT {base_url}/upload/<token>. They call verify_token, then open_stream or write_upload.
    """

    def __init__(
        self,
        root: Path | str,
        base_url: str,
        secret: bytes,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._files = ObjectFiles(Path(root))
        self._uploads = LocalUploads(self._files, clock)
        self._signer = TokenSigner(secret, clock)
        self.base_url = base_url.rstrip("/")

    @property
    def root(self) -> Path:
        """The folder that holds every object."""
        return self._files.root

    # Objects

    def put(self, key: str, data: bytes | Readable, content_type: str | None = None) -> None:
        """Store bytes or the rest of a readable stream under key, replacing any object."""
        self._write(key, read_chunks(data), content_type)

    def upload_file(self, key: str, path: Path | str, content_type: str | None = None) -> None:
        """Store a local file under key."""
        self._files.data_path(key)  # reject a bad key before reading a large file
        with open(path, "rb") as source:
            self._write(key, read_chunks(source), content_type)

    def _write(
        self,
        key: str,
        chunks: Iterator[bytes],
        content_type: str | None,
        max_bytes: int | None = None,
    ) -> ObjectInfo:
        self._files.data_path(key)
        written = self._files.write_temp(chunks, max_bytes)
        self._files.commit(key, written, written.md5.hex(), content_type)
        info = self._files.info(key)
        assert info is not None  # just written; only a racing delete could remove it
        return info

    def get(self, key: str) -> bytes:
        """Return the whole object; raises ObjectNotFound."""
        with self.open_stream(key) as stream:
            return stream.read_all()

    def download_file(self, key: str, path: Path | str) -> None:
        """Write the object to a local file, replacing it atomically; raises ObjectNotFound."""
        target = Path(path)
        with self._open(key) as source:
            fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(source, out, STREAM_CHUNK_SIZE)
                os.replace(temp_name, target)
            finally:
                Path(temp_name).unlink(missing_ok=True)

    def open_stream(self, key: str, chunk_size: int = STREAM_CHUNK_SIZE) -> ChunkStream:
        """Open the object for reading in chunks; raises ObjectNotFound before any chunk."""
        return ChunkStream(self._open(key), chunk_size)

    def _open(self, key: str) -> BinaryIO:
        path = self._files.data_path(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFound(key) from exc

    def stat(self, key: str) -> ObjectInfo | None:
        """Return the object's metadata, or None when there is no such object."""
        return self._files.info(key)

    def copy(self, source_key: str, target_key: str) -> None:
        """Copy one object to another key, with its content type; raises ObjectNotFound."""
        self._files.data_path(target_key)
        # Reading from one open file: a write that replaces the source meanwhile (a rename) is
        # not seen, so the copy is one whole version of it, as S3's CopyObject gives.
        with self._open(source_key) as source:
            info = self._files.info(source_key)
            self._write(target_key, read_chunks(source), info.content_type if info else None)

    def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error."""
        self._files.remove(key)

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object and unfinished upload under prefix; return keys removed."""
        validate_prefix(prefix, allow_empty=False)
        removed = sum(self._files.remove(key) for key in self._files.keys(prefix))
        for upload in self._uploads.list_uploads(prefix):
            self._uploads.abort(upload.key, upload.upload_id)
        return removed

    def revoke_upload_urls(self, prefix: str) -> int:
        """Forget the records behind the single-PUT URLs for keys under prefix, so they stop
        working at once (account erasure; per-item deletes rely on the app's check instead)."""
        validate_prefix(prefix, allow_empty=False)
        return self._uploads.forget_singles(prefix)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield the objects under prefix in key order (content_type is None, as on S3)."""
        validate_prefix(prefix)
        for key in self._files.keys(prefix):
            info = self._files.info(key, with_content_type=False)
            if info is not None:  # deleted since the folder walk
                yield info

    # Multipart uploads

    def create_multipart(self, key: str, content_type: str | None = None) -> str:
        """Start a multipart upload and return its upload id."""
        return self._uploads.create(key, content_type)

    def presign_part(self, key: str, upload_id: str, part_number: int, expires_in: int) -> str:
        """Return the app URL that takes one part by PUT."""
        self._files.data_path(key)
        claims = TokenClaims(
            TokenAction.UPLOAD,
            key,
            self._signer.expiry(validate_expires_in(expires_in)),
            upload_id=upload_id,
            part_number=validate_part_number(part_number),
        )
        return f"{self.base_url}/upload/{self._signer.sign(claims)}"

    def list_parts(self, key: str, upload_id: str) -> builtins.list[PartRef]:
        """Return the parts received so far, by number, with sizes; raises UploadNotFound."""
        return self._uploads.list_parts(key, upload_id)

    def complete_multipart(self, key: str, upload_id: str, parts: Sequence[PartRef]) -> None:
        """Join the given parts into the object; raises UploadNotFound or InvalidPart."""
        self._uploads.complete(key, upload_id, parts)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an unfinished upload and its parts; an unknown upload id is not an error."""
        self._uploads.abort(key, upload_id)

    def list_multipart_uploads(self, prefix: str = "") -> builtins.list[MultipartUpload]:
        """Return the unfinished uploads whose key starts with prefix (and forget lapsed PUT URLs;
        the hourly stale-upload sweep calls this)."""
        validate_prefix(prefix)
        self._uploads.sweep_single()
        return self._uploads.list_uploads(prefix)

    # Signed URLs and the app routes behind them

    def presign_put(self, key: str, content_type: str, expires_in: int) -> str:
        """Return the app URL that takes one small object by PUT, stored with content_type.

        The URL names a random upload id whose record (.multipart/single/) holds the key and
        content type until the URL lapses, so the URL itself shows no key. Whether the upload
        is still wanted is the app's to say before it calls write_upload.
        """
        expires_at = self._signer.expiry(validate_expires_in(expires_in))
        upload_id = self._uploads.create_single(key, content_type, expires_at)
        claims = TokenClaims(
            TokenAction.UPLOAD, key, expires_at, upload_id=upload_id, content_type=content_type
        )
        return f"{self.base_url}/upload/{self._signer.sign(claims)}"

    def presign_download(self, key: str, expires_in: int, filename: str) -> str:
        """Return the app URL that serves the object as an attachment named filename."""
        self._files.data_path(key)
        expires_at = self._signer.expiry(validate_expires_in(expires_in))
        claims = TokenClaims(TokenAction.DOWNLOAD, key, expires_at, filename=filename)
        return f"{self.base_url}/download/{self._signer.sign(claims)}"

    def verify_token(self, token: str, expected_action: TokenAction | str) -> TokenClaims:
        """Return a genuine, unexpired token's claims; raises InvalidToken otherwise."""
        return self._signer.verify(token, expected_action, self._upload_target)

    def _upload_target(self, upload_id: str, is_part: bool) -> tuple[str, str | None] | None:
        if not is_part:
            return self._uploads.single_target(upload_id)
        key = self._uploads.key_of(upload_id)
        return None if key is None else (key, None)

    def write_part(
        self, upload_id: str, part_number: int, stream: Readable, max_bytes: int
    ) -> PartRef:
        """Store one part from a request body; raises PayloadTooLarge past max_bytes."""
        return self._uploads.write_part(upload_id, part_number, stream, max_bytes)

    def write_object_from_stream(
        self, key: str, stream: Readable, max_bytes: int, content_type: str | None = None
    ) -> ObjectInfo:
        """Store a whole object from a request body; raises PayloadTooLarge past max_bytes."""
        return self._write(key, read_chunks(stream), content_type, max_bytes)

    def write_upload(self, claims: TokenClaims, stream: Readable, max_bytes: int) -> str:
        """Store what an upload token allows (a part or a whole object); return the ETag."""
        if claims.upload_id is not None and claims.part_number is not None:
            return self.write_part(claims.upload_id, claims.part_number, stream, max_bytes).etag
        return self.write_object_from_stream(
            claims.key, stream, max_bytes, claims.content_type
        ).etag
