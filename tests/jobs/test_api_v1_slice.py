"""The whole slice through /api/v1 over real HTTP with a real worker: a key made on the key page
(shown once, never again), a dataset uploaded by the API, tiny-sd trained, the LoRA downloaded
from its short-lived URL and loaded by diffusers."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import requests

from tests.conftest import activate_plan
from tests.jobs.conftest import LiveService
from tests.jobs.http_session import Person, noise_png, page_token, wait_for
from tests.jobs.test_run_lifecycle import _assert_loads_and_changes_output

SHOWN_KEY = re.compile(r'id="new-key-value" type="text" value="(att_live_[A-Za-z0-9]+)"')


def key_from_the_page(person: Person, name: str) -> str:
    """Create a key on the API keys page with the person's browser session."""
    token = page_token(person.get("/account/api-keys").text)
    page = person.session.post(
        f"{person.base}/account/api-keys",
        data={"csrf_token": token, "name": name, "access": "read write"},
    )
    assert page.status_code == 201 and page.headers["Cache-Control"] == "no-store"
    match = SHOWN_KEY.search(page.text)
    assert match, page.text[-1000:]
    return match.group(1)


class Script:
    """A program with a key and no cookies, as a client library would be."""

    def __init__(self, service: LiveService, key: str) -> None:
        self.base, self.http = service.url + "/api/v1", requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"

    def get(self, path: str) -> Any:
        """GET a path; the JSON answer (2xx asserted)."""
        response = self.http.get(self.base + path, timeout=30)
        assert response.ok, (path, response.status_code, response.text)
        return response.json()

    def post(self, path: str, body: Any = None, **headers: str) -> requests.Response:
        """POST JSON to a path."""
        return self.http.post(self.base + path, json=body, headers=headers, timeout=30)

    def upload(self, dataset_id: int, filename: str, data: bytes) -> None:
        """Start, PUT the bytes straight to storage, complete."""
        started = self.post(f"/datasets/{dataset_id}/uploads",
                            {"filename": filename, "size": len(data)})  # fmt: skip
        assert started.status_code == 201, started.text
        target = started.json()
        assert target["method"] == "single"
        headers = {"Content-Type": target["content_type"]}
        put = requests.put(target["urls"][0], data=data, headers=headers, timeout=30)
        assert put.ok, put.text
        done = self.post(f"/datasets/{dataset_id}/uploads/{target['item']['id']}/complete")
        assert done.status_code == 200, done.text


def test_a_script_with_a_key_uploads_trains_and_downloads(
    live_service: LiveService, tmp_path: Path
) -> None:
    ada = Person(live_service, "ada@example.com")
    activate_plan(live_service.app, "ada@example.com")
    key = key_from_the_page(ada, "laptop")
    assert key not in ada.get("/account/api-keys").text  # shown once, never again
    api = Script(live_service, key)

    dataset = api.post("/datasets", {"name": "Noise", "trigger_word": "sks_noise"}).json()
    for index in range(3):
        api.upload(dataset["id"], f"noise-{index}.png", noise_png(index))
    api.upload(dataset["id"], "broken.png", b"\x89PNG\r\n\x1a\n not really a png")

    def settled() -> list[dict[str, Any]] | None:
        items = api.get(f"/datasets/{dataset['id']}/items")["data"]
        return items if all(i["status"] in ("ready", "rejected") for i in items) else None

    items = {i["filename"]: i for i in wait_for(live_service, settled, 60, "ingest")}
    assert [items[f"noise-{n}.png"]["status"] for n in range(3)] == ["ready"] * 3
    assert items["broken.png"]["status"] == "rejected" and items["broken.png"]["reject_reason"]

    request = {"dataset_id": dataset["id"], "family": "tiny-sd", "preset": "character",
               "parameters": {"steps": 4, "rank": 4, "resolution": 64}}  # fmt: skip
    retry_key = str(uuid.uuid4())
    first = api.post("/trainings", request, **{"Idempotency-Key": retry_key})
    again = api.post("/trainings", request, **{"Idempotency-Key": retry_key})
    assert first.status_code == again.status_code == 201, first.text
    run_id = first.json()["id"]
    assert again.json()["id"] == run_id and again.headers["Idempotent-Replayed"] == "true"
    assert api.get("/usage")["active_trainings"] == 1

    def finished() -> dict[str, Any] | None:
        run = api.get(f"/trainings/{run_id}")
        return run if run["status"] in ("succeeded", "failed", "cancelled") else None

    run = wait_for(live_service, finished, 240, "training")
    assert run["status"] == "succeeded", run
    assert run["progress"]["step"] == 4 and run["files"]["lora"] and run["files"]["comfyui"]
    assert run["gpu_seconds"]["used"] > 0 and run["finished_at"]

    files = {f["kind"]: f for f in api.get(f"/trainings/{run_id}/artifacts")["data"]}
    download = requests.get(files["lora"]["url"], timeout=30)  # the URL itself is the ticket
    assert download.status_code == 200
    assert "attachment" in download.headers["Content-Disposition"]
    lora = tmp_path / "lora.safetensors"
    lora.write_bytes(download.content)
    _assert_loads_and_changes_output(live_service, [lora])
    assert api.get("/usage")["gpu_seconds"]["used"] > 0

    # Another person's key gets 404s, never the run or a URL.
    eve = Person(live_service, "eve@example.com", "Eve")
    other = Script(live_service, key_from_the_page(eve, "eve"))
    for path in (f"/trainings/{run_id}", f"/trainings/{run_id}/artifacts"):
        response = other.http.get(other.base + path, timeout=30)
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "application/problem+json"
