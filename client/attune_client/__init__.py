"""Python client for the Attune API (/api/v1): `Client(base_url, key)`; the `attune` command
is attune_client.cli."""

from attune_client.client import Client, Datasets, Trainings
from attune_client.errors import (
    ApiError,
    AttuneError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    ServerError,
    TimedOut,
    Unauthorized,
)
from attune_client.uploads import UploadProgress, UploadResult

__all__ = [
    "ApiError", "AttuneError", "BadRequest", "Client", "Conflict", "ConnectionFailed",
    "Datasets", "Forbidden", "Invalid", "NotFound", "RateLimited", "ServerError", "TimedOut",
    "Trainings", "Unauthorized", "UploadProgress", "UploadResult",
]  # fmt: skip
