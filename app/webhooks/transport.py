"""One webhook POST to a checked, pinned address: no DNS, no proxies, no redirects."""

from __future__ import annotations

import time
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)

from app.webhooks.ssrf import Destination

USER_AGENT = "Attune-Webhooks/1"
# The answer is not used: read a little so the connection closes cleanly, never a flood.
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class PostResult:
    """What came back: a status code, or an error in words (connection, TLS, timeout)."""

    status_code: int | None
    error: str | None
    duration_ms: int


def post_pinned(
    destination: Destination,
    body: bytes,
    headers: dict[str, str],
    timeout_s: float,
    ca_bundle: str | None = None,
) -> PostResult:
    """POST `body` to the destination's checked address, with its name as Host and SNI."""
    started = time.monotonic()
    pool = _pool(destination, timeout_s, ca_bundle)
    all_headers = {
        **headers,
        "Host": destination.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    try:
        answer = pool.urlopen(
            "POST",
            destination.target,
            body=body,
            headers=all_headers,
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
        )
        answer.read(MAX_ANSWER_BYTES)
        answer.release_conn()
        status, error = answer.status, None
    except (HTTPError, OSError) as exc:
        status, error = None, describe_error(exc, timeout_s)
    finally:
        pool.close()
    return PostResult(status, error, int((time.monotonic() - started) * 1000))


def _pool(
    destination: Destination, timeout_s: float, ca_bundle: str | None
) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s)
    if destination.scheme == "http":
        return urllib3.HTTPConnectionPool(
            destination.address, destination.port, timeout=timeout, retries=False, maxsize=1
        )
    return urllib3.HTTPSConnectionPool(
        destination.address,
        destination.port,
        timeout=timeout,
        retries=False,
        maxsize=1,
        cert_reqs="CERT_REQUIRED",
        ca_certs=ca_bundle or None,
        # The certificate must be valid for the name in the URL, not for the address.
        assert_hostname=destination.host,
        server_hostname=destination.host,
    )


def describe_error(exc: BaseException, timeout_s: float) -> str:
    """A short, person-readable reason for a failed POST, for the delivery log."""
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError | TimeoutError):
        return f"No answer within {timeout_s:g} s."
    if isinstance(exc, SSLError):
        return f"TLS failed: {_short(exc)}"
    if isinstance(exc, NewConnectionError | ConnectionError):
        return f"Could not connect: {_short(exc)}"
    return f"The request failed: {_short(exc)}"


def _short(exc: BaseException) -> str:
    text = str(exc.__cause__ or exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
