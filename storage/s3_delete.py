"""Deleting everything stored under an S3 key or prefix: versions, delete markers, in batches."""

from __future__ import annotations

from typing import Any, NamedTuple

from storage.base import StorageError
from storage.s3_errors import error_code, translated_errors

# DeleteObjects takes at most 1000 keys per call.
DELETE_BATCH = 1000
# Stores without object versioning (R2, for one) answer ListObjectVersions with these.
_NO_VERSIONING_CODES = frozenset({"NotImplemented", "MethodNotAllowed", "501"})


class _Version(NamedTuple):
    key: str
    version_id: str | None
    is_delete_marker: bool


class VersionDeleter:
    """Removes every version of the objects under a prefix so versioned buckets really forget."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket
        self._versioned_listing = True

    def delete_all(self, prefix: str, exact: bool) -> set[str]:
        """Delete every version and delete marker under prefix (or of exactly that key).

        Lists the first page again after each batch instead of following markers: some
        S3-compatible servers (moto, for one) lose their place when the marker key is gone.
        Returns the keys that had at least one real version.
        """
        removed: set[str] = set()
        previous: list[_Version] = []
        while True:
            versions, truncated = self._first_page(prefix)
            if exact:
                # Keys come sorted and a key sorts before every longer key it prefixes, so the
                # exact key's versions lead the page; anything after them ends the search.
                matching = [v for v in versions if v.key == prefix]
                truncated = truncated and len(matching) == len(versions)
                versions = matching
            if not versions:
                return removed
            if versions == previous:
                raise StorageError(f"objects under {prefix!r} survive deletion; giving up")
            self._delete_batch(versions)
            removed.update(v.key for v in versions if not v.is_delete_marker)
            if not truncated:
                return removed
            previous = versions

    def _first_page(self, prefix: str) -> tuple[list[_Version], bool]:
        """Return up to DELETE_BATCH versions and markers under prefix, and whether more exist."""
        if self._versioned_listing:
            try:
                with translated_errors(prefix):
                    page = self._client.list_object_versions(
                        Bucket=self._bucket, Prefix=prefix, MaxKeys=DELETE_BATCH
                    )
            except StorageError as exc:
                if error_code(exc.__cause__) not in _NO_VERSIONING_CODES:
                    raise
                self._versioned_listing = False
            else:
                versions = [
                    _Version(item["Key"], item.get("VersionId"), False)
                    for item in page.get("Versions", [])
                ] + [
                    _Version(item["Key"], item.get("VersionId"), True)
                    for item in page.get("DeleteMarkers", [])
                ]
                return versions, bool(page.get("IsTruncated"))
        with translated_errors(prefix):
            page = self._client.list_objects_v2(
                Bucket=self._bucket, Prefix=prefix, MaxKeys=DELETE_BATCH
            )
        versions = [_Version(item["Key"], None, False) for item in page.get("Contents", [])]
        return versions, bool(page.get("IsTruncated"))

    def _delete_batch(self, versions: list[_Version]) -> None:
        objects = [
            {"Key": v.key, "VersionId": v.version_id} if v.version_id else {"Key": v.key}
            for v in versions
        ]
        with translated_errors(versions[0].key):
            response = self._client.delete_objects(
                Bucket=self._bucket, Delete={"Objects": objects, "Quiet": True}
            )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise StorageError(
                f"{len(errors)} deletes failed, first {first.get('Key')!r}: "
                f"{first.get('Code')} {first.get('Message')}"
            )
