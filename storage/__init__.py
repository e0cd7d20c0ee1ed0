"""Object storage behind one small interface; open_storage picks the backend from settings."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import cast

from storage.base import (
    ChunkStream,
    InvalidKey,
    InvalidPart,
    InvalidToken,
    MultipartUpload,
    ObjectInfo,
    ObjectNotFound,
    PartRef,
    PayloadTooLarge,
    Readable,
    Storage,
    StorageError,
    UploadNotFound,
    attachment_disposition,
    validate_key,
)
from storage.local import LocalStorage
from storage.local_tokens import TokenAction, TokenClaims
from storage.s3 import AddressingStyle, S3Storage

__all__ = [
    "ChunkStream",
    "InvalidKey",
    "InvalidPart",
    "InvalidToken",
    "LocalStorage",
    "MultipartUpload",
    "ObjectInfo",
    "ObjectNotFound",
    "PartRef",
    "PayloadTooLarge",
    "Readable",
    "S3Storage",
    "Storage",
    "StorageError",
    "TokenAction",
    "TokenClaims",
    "UploadNotFound",
    "attachment_disposition",
    "open_storage",
    "validate_key",
]

# One settings mapping may carry both backends' values; only names neither backend knows are
# refused, so that a misspelt setting fails loudly instead of silently falling back.
_KNOWN_SETTINGS = frozenset(
    {
        "backend",
        "root",
        "base_url",
        "secret",
        "bucket",
        "endpoint_url",
        "region",
        "access_key",
        "secret_key",
        "public_endpoint_url",
        "addressing_style",
        "connect_timeout_s",
        "read_timeout_s",
        "max_attempts",
    }
)


def open_storage(settings: Mapping[str, object]) -> Storage:
    """Build the backend named by settings['backend'] ('local' or 's3') from plain values.

    local: root, base_url, secret (str or bytes). s3: bucket and optionally endpoint_url,
    region, access_key, secret_key, public_endpoint_url, addressing_style ('auto'|'path'),
    connect_timeout_s, read_timeout_s and max_attempts (per call, boto3's standard retries).
    Empty strings count as unset, so values can come straight from environment variables.
    """
    unknown = sorted(set(settings) - _KNOWN_SETTINGS)
    if unknown:
        raise ValueError(f"unknown storage settings: {', '.join(unknown)}")
    values = {name: value for name, value in settings.items() if value not in (None, "")}
    backend = values.get("backend")
    if backend == "local":
        return LocalStorage(
            root=Path(str(_required(values, "root"))),
            base_url=str(_required(values, "base_url")),
            secret=_as_bytes(_required(values, "secret")),
        )
    if backend == "s3":
        return S3Storage(
            bucket=str(_required(values, "bucket")),
            endpoint_url=_optional_str(values, "endpoint_url"),
            region=_optional_str(values, "region"),
            access_key=_optional_str(values, "access_key"),
            secret_key=_optional_str(values, "secret_key"),
            public_endpoint_url=_optional_str(values, "public_endpoint_url"),
            addressing_style=cast(AddressingStyle, str(values.get("addressing_style", "auto"))),
            connect_timeout_s=float(cast(float, values.get("connect_timeout_s", 5))),
            read_timeout_s=float(cast(float, values.get("read_timeout_s", 8))),
            max_attempts=int(cast(int, values.get("max_attempts", 3))),
        )
    raise ValueError(f"unknown storage backend {backend!r}; expected 'local' or 's3'")


def _required(values: Mapping[str, object], name: str) -> object:
    if name not in values:
        raise ValueError(f"storage setting {name!r} is required")
    return values[name]


def _optional_str(values: Mapping[str, object], name: str) -> str | None:
    value = values.get(name)
    return None if value is None else str(value)


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
