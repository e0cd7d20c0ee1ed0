"""The whole slice over real HTTP with a real worker: sign up, upload, train, download."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import requests
from PIL import Image
from safetensors import safe_open

from tests.conftest import activate_plan
from tests.jobs.conftest import LiveService

PASSWORD = "correct horse battery staple"


def _token(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match
    return match.group(1)


def _png(seed: int, size: tuple[int, int] = (96, 80)) -> bytes:
    image = Image.effect_noise(size, 40 + seed).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _wait_for(check, timeout: float, what: str, service: LiveService):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if service.worker.poll() is not None:
            raise AssertionError(f"worker exited:\n{service.worker_log.read_text()[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"{what} timed out; worker log:\n{service.worker_log.read_text()[-3000:]}")


def _upload(session: requests.Session, base: str, dataset_id: int, name: str, data: bytes) -> None:
    headers = {"X-CSRFToken": _token(session.get(f"{base}/dashboard").text)}
    target = session.post(
        f"{base}/api/datasets/{dataset_id}/uploads",
        json={"filename": name, "size": len(data)},
        headers=headers,
    )
    assert target.status_code == 201, target.text
    body = target.json()
    etags = [requests.put(url, data=data).headers["ETag"] for url in body["urls"]]
    done = session.post(
        f"{base}/api/datasets/{dataset_id}/uploads/{body['item']['id']}/complete",
        json={"etags": etags if body["method"] == "multipart" else []},
        headers=headers,
    )
    assert done.status_code == 200, done.text


def test_upload_train_download_over_http(live_service: LiveService, tmp_path: Path) -> None:
    base, session = live_service.url, requests.Session()
    page = session.get(f"{base}/sign-up").text
    signed_up = session.post(
        f"{base}/sign-up",
        data={"csrf_token": _token(page), "name": "Ada", "email": "ada@example.com",
              "password": PASSWORD, "adult": "y"},
    )  # fmt: skip
    assert signed_up.url.endswith("/dashboard")
    activate_plan(live_service.app, "ada@example.com")

    page = session.get(f"{base}/datasets").text
    created = session.post(
        f"{base}/datasets",
        data={"csrf_token": _token(page), "name": "Noise", "trigger_word": "sks_noise"},
    )
    dataset_id = int(created.url.rsplit("/", 1)[-1])
    for index in range(3):
        _upload(session, base, dataset_id, f"noise-{index}.png", _png(index))
    _upload(session, base, dataset_id, "broken.png", b"\x89PNG\r\n\x1a\n not really a png")

    def items_settled() -> list[dict[str, object]] | None:
        items = session.get(f"{base}/api/datasets/{dataset_id}/items").json()["items"]
        return items if all(i["status"] in ("ready", "rejected") for i in items) else None

    items = _wait_for(items_settled, 60, "ingest", live_service)
    statuses = {i["filename"]: i["status"] for i in items}
    assert statuses == {"noise-0.png": "ready", "noise-1.png": "ready",
                        "noise-2.png": "ready", "broken.png": "rejected"}  # fmt: skip
    broken = next(i for i in items if i["filename"] == "broken.png")
    assert "not a readable" in broken["reject_reason"]

    page = session.get(f"{base}/runs/new").text
    started = session.post(
        f"{base}/runs/new",
        data={"csrf_token": _token(page), "dataset_id": dataset_id, "family": "tiny-sd",
              "preset": "character", "steps": 4, "rank": 4, "learning_rate": "0.0005",
              "resolution": 64, "checkpoint_every": 2, "sample_every": 2},
    )  # fmt: skip
    assert "/runs/" in started.url, started.text[-2000:]
    run_id = int(started.url.rsplit("/", 1)[-1])

    def finished() -> dict[str, object] | None:
        status = session.get(f"{base}/api/runs/{run_id}").json()
        return status if status["status"] in ("succeeded", "failed", "cancelled") else None

    status = _wait_for(finished, 240, "training", live_service)
    assert status["status"] == "succeeded", status
    assert status["step"] == 4
    assert set(status["downloads"]) == {"lora", "comfyui"}

    download = session.get(f"{base}/runs/{run_id}/download/lora")
    assert download.status_code == 200
    assert "attachment" in download.headers["Content-Disposition"]
    path = tmp_path / "lora.safetensors"
    path.write_bytes(download.content)
    with safe_open(str(path), "pt") as lora:
        keys = list(lora.keys())
        metadata = lora.metadata()
    assert keys and all("lora" in key for key in keys)
    assert any(key.startswith("unet.") for key in keys)
    assert "sks_noise" in str(metadata)

    # Another person gets a 404 for the run and its downloads, never a URL.
    other = requests.Session()
    page = other.get(f"{base}/sign-up").text
    other.post(
        f"{base}/sign-up",
        data={"csrf_token": _token(page), "name": "Eve", "email": "eve@example.com",
              "password": PASSWORD, "adult": "y"},
    )  # fmt: skip
    assert other.get(f"{base}/runs/{run_id}", allow_redirects=False).status_code == 404
    stolen = other.get(f"{base}/runs/{run_id}/download/lora", allow_redirects=False)
    assert stolen.status_code == 404
    assert other.get(f"{base}/api/datasets/{dataset_id}/items").status_code == 404
