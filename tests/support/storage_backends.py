"""The storage behaviour suite's backends: their names and what a test needs to know of each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage import Storage

BACKENDS = ("local", "moto", "seaweedfs")
LOCAL_SECRET = b"local-storage-test-secret-0123456789"


@dataclass
class Backend:
    """A storage under test plus what the tests need to know about the service behind it."""

    name: str
    storage: Storage
    # The boto3 client behind an S3 backend, for setup the Storage interface does not offer.
    s3_client: Any = None
    # moto's in-process mock does not check presigned-URL signatures or expiry.
    checks_signatures: bool = True

    @property
    def is_s3(self) -> bool:
        """True for the S3 backends."""
        return self.s3_client is not None
