"""The client's one way to talk HTTP: /api/v1 calls with the key, presigned URLs without it,
typed errors, and retries only where a retry cannot do something twice."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from attune_client.errors import ConnectionFailed, error_from_response

API_PREFIX = "/api/v1"
SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})
MAX_RETRY_AFTER_S = 30.0
Json = dict[str, Any]


class Http:
    """Requests to one Attune server: `api` sends the Bearer key, `files` never does (presigned
    storage URLs are their own ticket, and the key must not leak to a bucket)."""

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries, self.backoff, self.sleep = retries, backoff, sleep
        agent = {"User-Agent": "attune-client/0.1"}
        self.api = httpx.Client(
            base_url=self.base_url + API_PREFIX,
            headers={**agent, "Authorization": f"Bearer {key}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self.files = httpx.Client(headers=agent, timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close both connection pools."""
        self.api.close()
        self.files.close()

    def call(
        self,
        method: str,
        path: str,
        body: Json | None = None,
        *,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """One /api/v1 operation; its JSON answer (None for 204), or the typed ApiError."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        repeatable = method in SAFE_METHODS or idempotency_key is not None
        response = self.send(
            lambda: self.api.request(method, path, json=body, params=params, headers=headers),
            repeatable,
        )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[Json]:
        """Every row of a paginated list, following `next_cursor` page by page."""
        query = {"limit": 100, **(params or {})}
        while True:
            page = self.call("GET", path, params=query)
            yield from page["data"]
            if not page.get("next_cursor"):
                return
            query = {**query, "cursor": page["next_cursor"]}

    def put_bytes(self, url: str, data: bytes, headers: dict[str, str]) -> httpx.Response:
        """PUT bytes to a presigned URL (safe to repeat); the response (its ETag for a part)."""
        return self.send(lambda: self.files.put(url, content=data, headers=headers), True)

    def download(self, url: str, destination: Path) -> int:
        """Stream a presigned URL into `destination` (written beside it, then moved): bytes."""
        partial = destination.with_name(destination.name + ".part")

        def fetch() -> httpx.Response:
            with self.files.stream("GET", url) as response:
                if response.is_success:
                    with open(partial, "wb") as out:
                        for chunk in response.iter_bytes(1 << 20):
                            out.write(chunk)
                else:
                    response.read()
                return response

        try:
            response = self.send(fetch, True)
            os.replace(partial, destination)
        finally:
            partial.unlink(missing_ok=True)
        return int(response.num_bytes_downloaded)

    def send(self, attempt: Callable[[], httpx.Response], repeatable: bool) -> httpx.Response:
        """Run `attempt` with retries: always after a refused connection or a 429 (nothing was
        done), after timeouts and 5xx answers only when the request is `repeatable`."""
        for number in range(self.retries + 1):
            last = number == self.retries
            try:
                response = attempt()
            except httpx.TransportError as exc:
                # A connection never made did nothing; any other failure may have acted.
                if last or not (repeatable or isinstance(exc, httpx.ConnectError)):
                    raise ConnectionFailed(f"Could not reach {self.base_url}: {exc}") from exc
                self.sleep(self._delay(number, None))
                continue
            if response.is_success:
                return response
            if last or not self._should_retry(response, repeatable):
                raise error_from_response(response)
            self.sleep(self._delay(number, response.headers.get("Retry-After")))
        raise AssertionError("unreachable")  # the loop returns or raises on its last turn

    @staticmethod
    def _should_retry(response: httpx.Response, repeatable: bool) -> bool:
        if response.status_code == 429:
            return True
        # 409 + Retry-After: the first request with this Idempotency-Key is still at work.
        if response.status_code == 409 and "Retry-After" in response.headers:
            return repeatable
        return repeatable and response.status_code in RETRY_STATUSES

    def _delay(self, number: int, retry_after: str | None) -> float:
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after), MAX_RETRY_AFTER_S)
        return self.backoff * (2**number) * (0.5 + random.random() / 2)
