"""Turning boto3's errors into the storage errors callers handle."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from storage.base import InvalidPart, ObjectNotFound, StorageError, UploadNotFound

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_BAD_PART_CODES = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})


@contextmanager
def translated_errors(key: str) -> Iterator[None]:
    """Turn boto3 errors into storage errors naming key."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        if code in _NOT_FOUND_CODES:
            raise ObjectNotFound(key) from exc
        if code == "NoSuchUpload":
            raise UploadNotFound(f"no such upload for {key!r}") from exc
        if code in _BAD_PART_CODES:
            raise InvalidPart(f"{code} completing {key!r}: {exc}") from exc
        raise StorageError(f"S3 error {code} on {key!r}: {exc}") from exc
    except S3UploadFailedError as exc:
        raise StorageError(f"upload of {key!r} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"S3 request for {key!r} failed: {exc}") from exc


def error_code(exc: BaseException | None) -> str:
    """Return the S3 error code of a botocore ClientError, or "" for anything else."""
    if not isinstance(exc, ClientError):
        return ""
    return str(exc.response.get("Error", {}).get("Code", ""))
