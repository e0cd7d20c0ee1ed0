"""S3 backend (AWS, Cloudflare R2, MinIO, SeaweedFS) on boto3."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from storage.base import (
    STREAM_CHUNK_SIZE,
    ChunkStream,
    MultipartUpload,
    ObjectInfo,
    ObjectNotFound,
    PartRef,
    Readable,
    StorageError,
    UploadNotFound,
    attachment_disposition,
    check_part_order,
    normalize_etag,
    validate_expires_in,
    validate_key,
    validate_part_number,
    validate_prefix,
)
from storage.s3_delete import VersionDeleter
from storage.s3_errors import error_code, translated_errors

AddressingStyle = Literal["auto", "path", "virtual"]
# S3 copies up to 5 GiB in one CopyObject, which copies one version atomically. Larger objects
# are copied part by part (UploadPartCopy), each part pinned by s3transfer to the ETag it saw
# first, so every part comes from the same version.
MAX_SINGLE_COPY_BYTES = 5 * 1024**3
COPY_PART_BYTES = 512 * 1024 * 1024


class S3Storage:
    """One bucket on any S3-compatible service; presigned URLs can name a public endpoint."""

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        public_endpoint_url: str | None = None,
        addressing_style: AddressingStyle = "auto",
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 8.0,
        max_attempts: int = 3,
        *,
        single_copy_limit: int = MAX_SINGLE_COPY_BYTES,
    ) -> None:
        if addressing_style not in ("auto", "path", "virtual"):
            raise ValueError(
                f"addressing_style must be auto, path or virtual: {addressing_style!r}"
            )
        self.bucket = bucket
        # SigV4 needs a region; S3-compatible servers accept us-east-1 whatever they call theirs.
        self.region = region or ("us-east-1" if endpoint_url else None)
        session = boto3.session.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=self.region,
        )
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": addressing_style},
            # A hung server costs at most about attempts x read timeout: small enough that a
            # web request answers 503 before gunicorn's 30 s timeout kills its worker.
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            # boto3 >= 1.36 adds CRC checksums by default, which several S3-compatible servers
            # reject and which browser-uploaded presigned parts would not carry.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client = session.client("s3", endpoint_url=endpoint_url, config=config)
        # The server may reach S3 on an internal name while browsers need the public one; the
        # host is part of the signature, so presigned URLs come from a client on that host.
        self._presigner = (
            session.client("s3", endpoint_url=public_endpoint_url, config=config)
            if public_endpoint_url
            else self._client
        )
        self._transfer = TransferConfig(multipart_threshold=8 * 1024 * 1024, max_concurrency=4)
        # single_copy_limit is S3's own limit; tests lower it to reach the part-by-part path.
        self._copy_transfer = TransferConfig(
            multipart_threshold=single_copy_limit,
            multipart_chunksize=min(COPY_PART_BYTES, max(single_copy_limit // 2, 5 * 1024**2)),
            max_concurrency=4,
        )
        self._deleter = VersionDeleter(self._client, bucket)

    @property
    def client(self) -> Any:
        """The boto3 client used for server-side calls (for admin tasks and tests)."""
        return self._client

    # Setup helpers for embedded and test deployments

    def ensure_bucket(self) -> None:
        """Create the bucket unless it already exists."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise StorageError(f"cannot reach bucket {self.bucket!r}: {exc}") from exc
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region not in (None, "us-east-1", "auto"):
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(**kwargs)
        except ClientError as exc:
            # Created meanwhile by another process of ours; BucketAlreadyExists would mean
            # another account owns the name, which must fail loudly.
            if error_code(exc) != "BucketAlreadyOwnedByYou":
                raise StorageError(f"cannot create bucket {self.bucket!r}: {exc}") from exc

    def set_cors(self, allowed_origins: Sequence[str], max_age_seconds: int = 3600) -> None:
        """Let browsers on allowed_origins PUT presigned uploads and read the ETag header."""
        rule = {
            "AllowedOrigins": list(allowed_origins),
            "AllowedMethods": ["PUT", "GET", "HEAD"],
            "AllowedHeaders": ["*"],
            # The browser needs each part's ETag to complete a multipart upload.
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": max_age_seconds,
        }
        with translated_errors(self.bucket):
            self._client.put_bucket_cors(
                Bucket=self.bucket, CORSConfiguration={"CORSRules": [rule]}
            )

    # Objects

    def put(self, key: str, data: bytes | Readable, content_type: str | None = None) -> None:
        """Store bytes or the rest of a readable stream under key, replacing any object."""
        validate_key(key)
        extra = {"ContentType": content_type} if content_type else {}
        with translated_errors(key):
            if isinstance(data, bytes | bytearray | memoryview):
                self._client.put_object(Bucket=self.bucket, Key=key, Body=bytes(data), **extra)
            else:
                self._client.upload_fileobj(
                    data, self.bucket, key, ExtraArgs=extra, Config=self._transfer
                )

    def upload_file(self, key: str, path: Path | str, content_type: str | None = None) -> None:
        """Store a local file under key, in parallel parts when it is large."""
        validate_key(key)
        extra = {"ContentType": content_type} if content_type else {}
        with translated_errors(key):
            self._client.upload_file(
                str(path), self.bucket, key, ExtraArgs=extra, Config=self._transfer
            )

    def get(self, key: str) -> bytes:
        """Return the whole object; raises ObjectNotFound."""
        with self.open_stream(key) as stream:
            return stream.read_all()

    def download_file(self, key: str, path: Path | str) -> None:
        """Write the object to a local file (boto3 renames a temp file); raises ObjectNotFound."""
        validate_key(key)
        with translated_errors(key):
            self._client.download_file(self.bucket, key, str(path), Config=self._transfer)

    def open_stream(self, key: str, chunk_size: int = STREAM_CHUNK_SIZE) -> ChunkStream:
        """Open the object for reading in chunks; raises ObjectNotFound before any chunk."""
        validate_key(key)
        with translated_errors(key):
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        return ChunkStream(response["Body"], chunk_size)

    def stat(self, key: str) -> ObjectInfo | None:
        """Return the object's metadata, or None when there is no such object."""
        validate_key(key)
        try:
            with translated_errors(key):
                head = self._client.head_object(Bucket=self.bucket, Key=key)
        except ObjectNotFound:
            return None
        return ObjectInfo(
            key=key,
            size=head["ContentLength"],
            etag=normalize_etag(head["ETag"]),
            last_modified=head["LastModified"],
            content_type=head.get("ContentType"),
        )

    def copy(self, source_key: str, target_key: str) -> None:
        """Copy one object inside the bucket, with its content type; raises ObjectNotFound."""
        validate_key(source_key)
        validate_key(target_key)
        with translated_errors(source_key):
            self._client.copy(
                {"Bucket": self.bucket, "Key": source_key},
                self.bucket,
                target_key,
                Config=self._copy_transfer,
            )

    def delete(self, key: str) -> None:
        """Remove the object and every stored version of it; a missing key is not an error."""
        validate_key(key)
        self._deleter.delete_all(key, exact=True)

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object, version and unfinished upload under prefix; return keys removed."""
        validate_prefix(prefix, allow_empty=False)
        removed = self._deleter.delete_all(prefix, exact=False)
        for upload in self.list_multipart_uploads(prefix):
            self.abort_multipart(upload.key, upload.upload_id)
        return len(removed)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield the objects under prefix in key order (content_type is None in listings)."""
        validate_prefix(prefix)
        for page in self._pages("list_objects_v2", prefix, Prefix=prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=item["Key"],
                    size=item["Size"],
                    etag=normalize_etag(item.get("ETag", "")),
                    last_modified=item["LastModified"],
                )

    def _pages(self, operation: str, subject: str, **params: Any) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator(operation)
        pages = iter(paginator.paginate(Bucket=self.bucket, **params))
        while True:
            with translated_errors(subject):
                page = next(pages, None)
            if page is None:
                return
            yield page

    # Multipart uploads

    def create_multipart(self, key: str, content_type: str | None = None) -> str:
        """Start a multipart upload and return its upload id."""
        validate_key(key)
        extra = {"ContentType": content_type} if content_type else {}
        with translated_errors(key):
            response = self._client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)
        return str(response["UploadId"])

    def presign_part(self, key: str, upload_id: str, part_number: int, expires_in: int) -> str:
        """Return a URL the browser PUTs one part to; the response's ETag header names the part."""
        validate_key(key)
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "UploadId": upload_id,
            "PartNumber": validate_part_number(part_number),
        }
        return self._presign("upload_part", params, expires_in)

    def list_parts(self, key: str, upload_id: str) -> builtins.list[PartRef]:
        """Return the parts received so far, by number, with sizes; raises UploadNotFound."""
        validate_key(key)
        return [
            PartRef(part["PartNumber"], normalize_etag(part["ETag"]), part["Size"])
            for page in self._pages("list_parts", key, Key=key, UploadId=upload_id)
            for part in page.get("Parts", [])
        ]

    def complete_multipart(self, key: str, upload_id: str, parts: Sequence[PartRef]) -> None:
        """Join the given parts into the object; raises UploadNotFound or InvalidPart."""
        validate_key(key)
        listed = [
            {"PartNumber": part.number, "ETag": f'"{normalize_etag(part.etag)}"'}
            for part in check_part_order(parts)
        ]
        with translated_errors(key):
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": listed},
            )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an unfinished upload and its parts; an unknown upload id is not an error."""
        validate_key(key)
        try:
            with translated_errors(key):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except UploadNotFound:
            return

    def list_multipart_uploads(self, prefix: str = "") -> builtins.list[MultipartUpload]:
        """Return the unfinished uploads whose key starts with prefix."""
        validate_prefix(prefix)
        return [
            MultipartUpload(item["Key"], item["UploadId"], item["Initiated"])
            for page in self._pages("list_multipart_uploads", prefix, Prefix=prefix)
            for item in page.get("Uploads", [])
        ]

    def revoke_upload_urls(self, prefix: str) -> int:
        """S3 keeps nothing for a presigned URL, so there is nothing to revoke: it works until
        it expires (callers sweep the prefix again after that)."""
        validate_prefix(prefix, allow_empty=False)
        return 0

    # Presigned single requests

    def presign_put(self, key: str, content_type: str, expires_in: int) -> str:
        """Return a URL for one PUT of a small file; the PUT must send this Content-Type."""
        validate_key(key)
        params = {"Bucket": self.bucket, "Key": key, "ContentType": content_type}
        return self._presign("put_object", params, expires_in)

    def presign_download(self, key: str, expires_in: int, filename: str) -> str:
        """Return a short-lived URL that downloads the object as an attachment named filename."""
        validate_key(key)
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "ResponseContentDisposition": attachment_disposition(filename),
        }
        return self._presign("get_object", params, expires_in)

    def _presign(self, operation: str, params: dict[str, Any], expires_in: int) -> str:
        with translated_errors(params["Key"]):
            url = self._presigner.generate_presigned_url(
                operation, Params=params, ExpiresIn=validate_expires_in(expires_in)
            )
        return str(url)
