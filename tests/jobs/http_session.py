"""A person using Attune over real HTTP (requests), as the browser's scripts would."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from PIL import Image

from tests.support.live_service import LiveService

PASSWORD = "correct horse battery staple"
T = TypeVar("T")


def page_token(html: str) -> str:
    """The CSRF token a page carries in its meta tag."""
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def noise_png(seed: int, size: tuple[int, int] = (96, 80)) -> bytes:
    """A small random PNG."""
    buffer = io.BytesIO()
    Image.effect_noise(size, 40 + seed).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def wait_for(service: LiveService, check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `check` until it returns something truthy; fail with the worker's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if service.worker.poll() is not None:
            raise AssertionError(f"worker exited:\n{service.worker_log.read_text()[-3000:]}")
        time.sleep(0.3)
    raise AssertionError(f"{what} timed out; worker log:\n{service.worker_log.read_text()[-3000:]}")


class Person:
    """One signed-in person with their own cookie jar."""

    def __init__(self, service: LiveService, email: str, name: str = "Ada") -> None:
        self.base, self.session = service.url, requests.Session()
        page = self.session.get(f"{self.base}/sign-up").text
        response = self.session.post(
            f"{self.base}/sign-up",
            data={"csrf_token": page_token(page), "name": name, "email": email,
                  "password": PASSWORD, "adult": "y"},
        )  # fmt: skip
        assert response.url.endswith("/dashboard"), response.text[-500:]

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET a path of the app."""
        return self.session.get(self.base + path, **kwargs)

    def post_form(
        self, path: str, data: dict[str, Any], page: str | None = None
    ) -> requests.Response:
        """POST a form with the CSRF token taken from `page` (default: the same path)."""
        token = page_token(self.get(page or path).text)
        return self.session.post(self.base + path, data={"csrf_token": token, **data})

    def post_json(self, path: str, body: dict[str, Any]) -> requests.Response:
        """POST JSON with the CSRF header, as the page scripts do."""
        headers = {"X-CSRFToken": page_token(self.get("/dashboard").text)}
        return self.session.post(self.base + path, json=body, headers=headers)

    def create_dataset(self, name: str = "Noise", trigger: str = "sks_noise") -> int:
        """Create a dataset through the form; returns its id."""
        response = self.post_form("/datasets", {"name": name, "trigger_word": trigger})
        return int(response.url.rsplit("/", 1)[-1])

    def upload(self, dataset_id: int, filename: str, data: bytes) -> dict[str, Any]:
        """Presign, PUT the bytes to storage, complete; returns the item."""
        target = self.post_json(
            f"/api/datasets/{dataset_id}/uploads", {"filename": filename, "size": len(data)}
        )
        assert target.status_code == 201, target.text
        body = target.json()
        etags = [requests.put(url, data=data).headers["ETag"] for url in body["urls"]]
        done = self.post_json(
            f"/api/datasets/{dataset_id}/uploads/{body['item']['id']}/complete",
            {"etags": etags if body["method"] == "multipart" else []},
        )
        assert done.status_code == 200, done.text
        return done.json()["item"]

    def ready_dataset(self, service: LiveService, images: int = 3) -> int:
        """A dataset of small noise images, waited on until ingest made them ready."""
        dataset_id = self.create_dataset()
        for index in range(images):
            self.upload(dataset_id, f"noise-{index}.png", noise_png(index))

        def settled() -> bool:
            items = self.get(f"/api/datasets/{dataset_id}/items").json()["items"]
            return all(item["status"] == "ready" for item in items)

        wait_for(service, settled, 60, "ingest")
        return dataset_id

    def start_run(self, dataset_id: int, **params: Any) -> int:
        """Start a tiny-sd run through the JSON API; returns its id."""
        response = self.post_json(
            "/api/runs",
            {
                "dataset_id": dataset_id,
                "family": "tiny-sd",
                "preset": "character",
                "params": params,
            },
        )
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def run_status(self, run_id: int) -> dict[str, Any]:
        """The run page's live JSON."""
        return self.get(f"/api/runs/{run_id}").json()
