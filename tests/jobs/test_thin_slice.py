"""The whole slice over real HTTP with a real worker: sign up, upload, train, download."""

from __future__ import annotations

from pathlib import Path

from safetensors import safe_open

from tests.jobs.http_session import Person, noise_png, wait_for
from tests.support.accounts import activate_plan
from tests.support.live_service import LiveService


def test_upload_train_download_over_http(live_service: LiveService, tmp_path: Path) -> None:
    ada = Person(live_service, "ada@example.com")
    activate_plan(live_service.app, "ada@example.com")
    dataset_id = ada.create_dataset()
    for index in range(3):
        ada.upload(dataset_id, f"noise-{index}.png", noise_png(index))
    ada.upload(dataset_id, "broken.png", b"\x89PNG\r\n\x1a\n not really a png")

    def items_settled() -> list[dict[str, object]] | None:
        items = ada.get(f"/api/datasets/{dataset_id}/items").json()["items"]
        return items if all(i["status"] in ("ready", "rejected") for i in items) else None

    items = wait_for(live_service, items_settled, 60, "ingest")
    statuses = {i["filename"]: i["status"] for i in items}
    assert statuses == {"noise-0.png": "ready", "noise-1.png": "ready",
                        "noise-2.png": "ready", "broken.png": "rejected"}  # fmt: skip
    broken = next(i for i in items if i["filename"] == "broken.png")
    assert broken["reject_reason"]

    started = ada.post_form(
        "/runs/new",
        {"dataset_id": dataset_id, "family": "tiny-sd", "preset": "character", "steps": 4,
         "rank": 4, "learning_rate": "0.0005", "resolution": 64},
    )  # fmt: skip
    assert "/runs/" in started.url, started.text[-2000:]
    run_id = int(started.url.rsplit("/", 1)[-1])

    def finished() -> dict[str, object] | None:
        status = ada.run_status(run_id)
        return status if status["status"] in ("succeeded", "failed", "cancelled") else None

    status = wait_for(live_service, finished, 240, "training")
    assert status["status"] == "succeeded", status
    assert status["step"] == 4
    assert set(status["downloads"]) == {"lora", "comfyui"}

    download = ada.get(f"/runs/{run_id}/download/lora")
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
    eve = Person(live_service, "eve@example.com", "Eve")
    assert eve.get(f"/runs/{run_id}", allow_redirects=False).status_code == 404
    assert eve.get(f"/runs/{run_id}/download/lora", allow_redirects=False).status_code == 404
    assert eve.get(f"/api/datasets/{dataset_id}/items").status_code == 404
