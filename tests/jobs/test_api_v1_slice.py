"""The whole slice through /api/v1 over real HTTP with a real worker, as its users script it: a
key made on the key page (shown once, never again), the `attune` command uploading a folder,
training tiny-sd with a live progress line and downloading the LoRA, the Python library doing
the same calls on the same run, and diffusers loading the file."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
import requests
from attune_client import Client, NotFound

from tests.jobs.http_session import Person, noise_png, page_token
from tests.support.accounts import activate_plan
from tests.support.live_service import LiveService
from tests.support.lora_checks import assert_loads_and_changes_output

ATTUNE = Path(sys.executable).parent / "attune"  # `make install` installs the client editable
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


def attune(env: dict[str, str], *args: str, stdin: str | None = None) -> CompletedProcess[str]:
    """Run the installed `attune` command."""
    return subprocess.run([str(ATTUNE), *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def caption_folder(folder: Path) -> Path:
    """Three noise images (one with a caption file) and a file that only looks like a PNG."""
    folder.mkdir()
    for index in range(3):
        (folder / f"noise-{index}.png").write_bytes(noise_png(index))
    (folder / "noise-0.txt").write_text("sks_noise, static\n")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return folder


def test_the_cli_and_the_library_upload_train_and_download(
    live_service: LiveService, tmp_path: Path
) -> None:
    ada = Person(live_service, "ada@example.com")
    activate_plan(live_service.app, "ada@example.com")
    key = key_from_the_page(ada, "laptop")
    assert key not in ada.get("/account/api-keys").text  # shown once, never again
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTUNE_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")

    login = attune(env, "login", "--url", live_service.url, stdin=key + "\n")
    assert login.returncode == 0, login.stderr
    assert stat.S_IMODE((tmp_path / "config/attune/config.toml").stat().st_mode) == 0o600
    folder = caption_folder(tmp_path / "noise")
    upload = attune(env, "datasets", "upload", str(folder), "--trigger-word", "sks_noise")
    # broken.png is refused by ingest: named with its reason, and the exit status says so.
    assert upload.returncode == 1, upload.stderr
    assert "4 sent, 0 already there" in upload.stdout and "3 ready, 1 rejected" in upload.stdout
    assert re.search(r"broken\.png: .+", upload.stderr)
    dataset_id = int(re.search(r"Dataset (\d+) “noise”", upload.stdout).group(1))  # type: ignore[union-attr]
    again = attune(env, "datasets", "upload", str(folder))  # resumes into the same dataset
    assert f"Dataset {dataset_id} “noise”: 0 sent, 4 already there" in again.stdout, again.stderr

    client = Client(live_service.url, key)
    items = {i["filename"]: i for i in client.datasets.list_items(dataset_id)}
    assert items["noise-0.png"]["caption"] == "sks_noise, static"
    assert items["broken.png"]["status"] == "rejected" and items["broken.png"]["reject_reason"]

    # The CLI starts and follows the run; the library sends the same request with the same
    # Idempotency-Key meanwhile and gets the same run: one run, its GPU time reserved once.
    retry_key = str(uuid.uuid4())
    params = {"steps": 4, "rank": 4, "resolution": 64}
    train = subprocess.Popen(
        [str(ATTUNE), "train", "--dataset", str(dataset_id), "--family", "tiny-sd",
         "--preset", "character", *[f"--param={n}={v}" for n, v in params.items()],
         "--idempotency-key", retry_key, "--wait"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        run = client.trainings.create(dataset_id, "tiny-sd", "character", params,
                                      idempotency_key=retry_key)  # fmt: skip
        assert client.usage()["active_trainings"] == 1
        polls: list[dict[str, Any]] = []
        done = client.trainings.wait(run["id"], polls.append, interval=0.5, timeout=240)
        out, err = train.communicate(timeout=60)
    finally:
        train.kill()
    assert done["status"] == "succeeded", (done, live_service.worker_log.read_text()[-3000:])
    steps = [poll["progress"]["step"] or 0 for poll in polls]
    assert steps == sorted(steps) and steps[-1] == 4 and done["files"]["lora"]
    assert train.returncode == 0, err
    assert "step 4/4" in err and f"Run {run['id']} succeeded" in out
    assert [r["id"] for r in client.trainings.list()] == [run["id"]]
    replay = requests.post(f"{live_service.url}/api/v1/trainings", timeout=30,
                           json={"dataset_id": dataset_id, "family": "tiny-sd",
                                 "preset": "character", "parameters": params},
                           headers={"Authorization": f"Bearer {key}",
                                    "Idempotency-Key": retry_key})  # fmt: skip
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == run["id"]

    fetched = attune(env, "download", str(run["id"]), "-o", str(tmp_path / "cli"))
    assert fetched.returncode == 0, fetched.stderr
    cli_lora = Path(fetched.stdout.strip())
    saved = client.trainings.download(run["id"], ["lora", "comfyui"], tmp_path / "library")
    assert [p.name for p in saved] == [cli_lora.name, saved[1].name] and len(saved) == 2
    assert saved[0].read_bytes() == cli_lora.read_bytes()
    assert_loads_and_changes_output(live_service, [cli_lora])
    assert client.usage()["gpu_seconds"]["used"] > 0

    # Another person's key gets 404s, never the run or a URL.
    eve = Person(live_service, "eve@example.com", "Eve")
    other = Client(live_service.url, key_from_the_page(eve, "eve"))
    with pytest.raises(NotFound):
        other.trainings.get(run["id"])
    with pytest.raises(NotFound):
        other.trainings.artifacts(run["id"])
