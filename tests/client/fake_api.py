"""An in-memory stand-in for /api/v1 and its presigned storage, served through
httpx.MockTransport: enough of the upload, training and download flows to test the client's
decisions (what it skips, resumes, retries) without a server."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import httpx

BASE = "https://attune.test"
STORAGE = "https://bucket.test"
KEY = "att_live_testkey"


@dataclass
class Item:
    """One dataset file as the fake server holds it."""

    id: int
    filename: str
    size: int
    caption: str | None = None
    status: str = "uploading"
    part_size: int = 0  # 0: a single PUT
    parts: dict[int, bytes] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "filename": self.filename,
            "size_bytes": self.size,
            "status": self.status,
            "caption": self.caption,
            "reject_reason": None,
        }


class FakeApi:
    """The fake server: state, a log of requests, and failures to inject."""

    def __init__(self, part_size: int = 10) -> None:
        self.part_size = part_size
        self.items: dict[int, Item] = {}
        self.runs: dict[int, dict[str, Any]] = {}
        self.log: list[httpx.Request] = []
        self.fail: list[tuple[str, str, httpx.Response | Exception]] = []  # (method, path part)
        self.artifacts: dict[str, bytes] = {}
        self.run_polls: list[dict[str, Any]] = []

    def transport(self) -> httpx.MockTransport:
        """The transport to give Client(..., transport=...)."""
        return httpx.MockTransport(self.handle)

    def seen(self, method: str, fragment: str) -> list[httpx.Request]:
        """The requests made with this method whose URL contains `fragment`."""
        return [r for r in self.log if r.method == method and fragment in str(r.url)]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.log.append(request)
        for index, (method, fragment, outcome) in enumerate(self.fail):
            if request.method == method and fragment in str(request.url):
                del self.fail[index]
                if isinstance(outcome, Exception):
                    raise outcome
                return outcome
        if str(request.url).startswith(STORAGE):
            return self._storage(request)
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return problem(401, "This API key is not known.", reason="unknown")
        path = request.url.path.removeprefix("/api/v1")
        body = json.loads(request.content) if request.content else {}
        return self._api(request.method, path.strip("/").split("/"), body)

    def _api(self, method: str, parts: list[str], body: dict[str, Any]) -> httpx.Response:
        match method, parts:
            case "GET", ["usage"]:
                return httpx.Response(
                    200, json={"plan": {"label": "Pro"}, "gpu_seconds": {"left": 7200.0}}
                )
            case "GET", ["datasets", dataset]:
                return httpx.Response(200, json={"id": int(dataset), "name": "Cats"})
            case "POST", ["datasets"]:
                return httpx.Response(201, json={"id": 1, "name": body["name"]})
            case "GET", ["datasets", _, "items"]:
                rows = [item.json() for item in self.items.values()]
                return httpx.Response(200, json={"data": rows, "next_cursor": None})
            case "POST", ["datasets", _, "uploads"]:
                return self._start(body)
            case "GET", ["datasets", _, "uploads", item, "parts"]:
                held = self.items[int(item)]
                listed = [
                    {"part_number": n, "etag": f"etag-{n}", "size": len(data)}
                    for n, data in sorted(held.parts.items())
                ]
                count = math.ceil(held.size / held.part_size) if held.part_size else 1
                return httpx.Response(
                    200,
                    json={
                        "parts": listed,
                        "part_count": count,
                        "part_size": held.part_size or held.size,
                    },
                )
            case "GET", ["datasets", _, "uploads", item, "target"]:
                return httpx.Response(200, json=self._target(self.items[int(item)]))
            case "GET", ["datasets", _, "uploads", item, "parts", number]:
                return httpx.Response(200, json={"url": f"{STORAGE}/{item}/{number}"})
            case "POST", ["datasets", _, "uploads", item, "complete"]:
                return self._complete(self.items[int(item)], body.get("parts", []))
            case "DELETE", ["datasets", _, "uploads", item]:
                del self.items[int(item)]
                return httpx.Response(204)
            case "POST", ["trainings"]:
                return httpx.Response(
                    201, json={"id": 7, "status": "queued", "gpu_seconds": {"reserved": 60}, **body}
                )
            case "GET", ["trainings", run]:
                return httpx.Response(
                    200, json=self.run_polls.pop(0) if self.run_polls else self.runs[int(run)]
                )
            case "GET", ["trainings", run, "artifacts"]:
                files = [
                    {
                        "kind": kind,
                        "name": None,
                        "filename": f"{kind}.safetensors",
                        "url": f"{STORAGE}/download/{kind}",
                    }
                    for kind in self.artifacts
                ]
                return httpx.Response(200, json={"data": files})
        return problem(404, "There is nothing here.")

    def _start(self, body: dict[str, Any]) -> httpx.Response:
        if not body["filename"].endswith((".png", ".mp4")):
            return problem(422, f"“{body['filename']}” is not a supported file (.mp4, .png).")
        item = Item(
            max(self.items, default=0) + 1, body["relative_path"], body["size"], body.get("caption")
        )
        self.items[item.id] = item
        if item.size > self.part_size:
            item.part_size = self.part_size
        return httpx.Response(201, json=self._target(item))

    def _target(self, item: Item) -> dict[str, Any]:
        """Where the item's bytes go: one URL, or one per part (fresh each time asked)."""
        if not item.part_size:
            return {
                "item": item.json(),
                "method": "single",
                "urls": [f"{STORAGE}/{item.id}/0"],
                "part_size": item.size,
                "part_count": 1,
                "content_type": "image/png",
            }
        count = math.ceil(item.size / item.part_size)
        urls = [f"{STORAGE}/{item.id}/{n}" for n in range(1, count + 1)]
        return {
            "item": item.json(),
            "method": "multipart",
            "urls": urls,
            "part_size": item.part_size,
            "part_count": count,
            "content_type": "video/mp4",
        }

    def _complete(self, item: Item, parts: list[dict[str, Any]]) -> httpx.Response:
        if item.part_size:
            numbers = [p["part_number"] for p in parts]
            etags_ok = all(p["etag"].strip('"') == f"etag-{p['part_number']}" for p in parts)
            if numbers != sorted(item.parts) or not etags_ok:
                return problem(422, f"Some parts of “{item.filename}” are missing or damaged.")
        if sum(len(data) for data in item.parts.values()) != item.size:
            return problem(422, f"“{item.filename}” arrived incomplete; upload it again.")
        item.status = "uploaded"
        return httpx.Response(200, json={"item": item.json()})

    def _storage(self, request: httpx.Request) -> httpx.Response:
        segments = request.url.path.strip("/").split("/")
        if segments[0] == "download":
            return httpx.Response(200, content=self.artifacts[segments[1]])
        item, number = self.items[int(segments[0])], int(segments[1])
        item.parts[number] = request.content
        return httpx.Response(200, headers={"ETag": f'"etag-{number}"'})


def problem(status: int, detail: str, **extra: Any) -> httpx.Response:
    """An RFC 9457 problem response as /api/v1 sends them."""
    body = {
        "type": f"{BASE}/docs/api#problem",
        "title": "Refused",
        "status": status,
        "detail": detail,
        **extra,
    }
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})
