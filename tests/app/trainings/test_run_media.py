"""A family's wrong kind of data is refused before the run is queued, with the reason per file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import func, select

from app.extensions import db, get_redis
from tests.support.accounts import activate_plan
from tests.support.apps import DATABASES, running_app
from tests.support.web import api_headers, csrf_token, sign_up

FAMILIES = ("tiny-sd", "sd15", "wan22-ti2v-5b", "wan22-t2v-a14b", "ltx2")


@pytest.fixture(params=DATABASES)
def video_app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app offering image and video families, a person on Pro (images + video) signed up."""
    with running_app(request, request.param, {"enabled_families": FAMILIES}) as app:
        sign_up(app.test_client())
        activate_plan(app, "ada@example.com", "pro")
        yield app


@pytest.fixture
def client(video_app: Flask) -> FlaskClient:
    from tests.support.web import sign_in

    client = video_app.test_client()
    sign_in(client, "ada@example.com")
    return client


def dataset_of(app: Flask, *items: dict[str, object]) -> int:
    """A dataset whose items are ready with the facts ingest records (kind, frames, fps)."""
    from app.accounts.models import User
    from app.datasets.models import Dataset, DatasetItem

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "ada@example.com"))
        dataset = Dataset(user_id=user.id, name="Walks", trigger_word="sks")
        db.session.add(dataset)
        db.session.flush()
        for index, facts in enumerate(items):
            video = facts["media_kind"] == "video"
            db.session.add(
                DatasetItem(
                    dataset_id=dataset.id,
                    content_type="video/mp4" if video else "image/png",
                    storage_key=f"{dataset.storage_prefix()}items/{index}/original",
                    status="ready", size_bytes=10, width=640, height=480,
                    **facts,
                )
            )  # fmt: skip
        db.session.commit()
        return dataset.id


def image(name: str) -> dict[str, object]:
    return {"filename": name, "media_kind": "image"}


def clip(name: str, frames: int, fps: float) -> dict[str, object]:
    return {"filename": name, "media_kind": "video", "frame_count": frames, "fps": fps,
            "duration_s": frames / fps}  # fmt: skip


def start(client: FlaskClient, dataset_id: int, family: str, preset: str = "character"):  # type: ignore[no-untyped-def]
    body = {"dataset_id": dataset_id, "family": family, "preset": preset, "params": {"steps": 10}}
    return client.post("/api/runs", json=body, headers=api_headers(client))


def nothing_queued(app: Flask) -> bool:
    from app.trainings.models import QuotaPeriod, TrainingRun

    with app.app_context():
        runs = db.session.scalar(select(func.count()).select_from(TrainingRun))
        reserved = db.session.scalar(
            select(func.coalesce(func.sum(QuotaPeriod.reserved_seconds), 0))
        )
        jobs = sum(len(Queue(name, connection=get_redis())) for name in ("gpu-80gb", "gpu-24gb"))
    return runs == 0 and not reserved and jobs == 0


def test_a_clip_shorter_than_the_family_minimum_is_refused_with_its_reason(
    video_app: Flask, client: FlaskClient
) -> None:
    dataset_id = dataset_of(
        video_app, clip("walk.mp4", 48, 24.0), clip("blink.mp4", 3, 24.0), image("face.png")
    )
    response = start(client, dataset_id, "wan22-ti2v-5b")
    assert response.status_code == 409
    body = response.get_json()
    assert body["files"] == {"blink.mp4": "too short: about 3 frames at 24 fps, at least 5 needed"}
    assert "blink.mp4: too short" in body["error"] and "Wan 2.2 TI2V 5B" in body["error"]
    assert nothing_queued(video_app)


def test_ltx2_needs_8k_plus_1_frames_and_judges_them_at_24_fps(
    video_app: Flask, client: FlaskClient
) -> None:
    # 12 frames at 12 fps last 0.92 s: 23 frames at 24 fps, enough for 17 (LTX-2 wants 9+).
    # 7 frames at 60 fps last 0.1 s: 3 frames at 24 fps, too short.
    dataset_id = dataset_of(video_app, clip("slow.mov", 12, 12.0), clip("fast.webm", 7, 60.0))
    response = start(client, dataset_id, "ltx2")
    assert response.status_code == 409
    assert response.get_json()["files"] == {
        "fast.webm": "too short: about 3 frames at 24 fps, at least 9 needed"
    }
    assert nothing_queued(video_app)


def test_images_are_refused_for_a_run_that_needs_clips(
    video_app: Flask, client: FlaskClient
) -> None:
    dataset_id = dataset_of(video_app, clip("walk.mp4", 48, 24.0), image("a.png"), image("b.png"))
    response = start(client, dataset_id, "wan22-t2v-a14b", preset="motion")
    assert response.status_code == 409
    files = response.get_json()["files"]
    assert set(files) == {"a.png", "b.png"}
    assert all("still images are not used" in reason for reason in files.values())
    assert nothing_queued(video_app)
    # The same stills are welcome as 1-frame clips in a character LoRA of the same family.
    assert start(client, dataset_id, "wan22-t2v-a14b").status_code == 201


def test_clips_are_refused_for_an_image_family(video_app: Flask, client: FlaskClient) -> None:
    dataset_id = dataset_of(video_app, image("a.png"), clip("walk.mp4", 48, 24.0))
    response = start(client, dataset_id, "sd15")
    assert response.status_code == 409
    assert response.get_json()["files"] == {"walk.mp4": "sd15 trains on images; video is not used"}
    assert nothing_queued(video_app)


def test_a_dataset_the_family_can_use_is_queued(video_app: Flask, client: FlaskClient) -> None:
    dataset_id = dataset_of(video_app, clip("walk.mp4", 48, 24.0), image("face.png"))
    response = start(client, dataset_id, "ltx2")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] == "queued"


def test_the_run_form_lists_each_refused_file(video_app: Flask, client: FlaskClient) -> None:
    dataset_id = dataset_of(video_app, clip("walk.mp4", 48, 24.0), clip("blink.mp4", 3, 24.0))
    token = csrf_token(client.get("/runs/new").get_data(as_text=True))
    response = client.post(
        "/runs/new",
        data={"csrf_token": token, "dataset_id": dataset_id, "family": "wan22-ti2v-5b",
              "preset": "motion", "steps": "10", "rank": "8"},
    )  # fmt: skip
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "blink.mp4: too short: about 3 frames at 24 fps, at least 5 needed" in page
    assert nothing_queued(video_app)


def test_the_api_refuses_the_same_files_as_a_problem_with_their_reasons(
    video_app: Flask, client: FlaskClient
) -> None:
    from tests.app.api_v1.support import Api, create_key_in_browser

    api = Api(video_app, create_key_in_browser(client))
    dataset_id = dataset_of(video_app, image("a.png"), clip("walk.mp4", 48, 24.0))
    body = {"dataset_id": dataset_id, "family": "sd15", "parameters": {"steps": 10}}
    response = api.post("/trainings", body)
    assert response.status_code == 409 and response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["files"] == {"walk.mp4": "sd15 trains on images; video is not used"}
    assert "walk.mp4: sd15 trains on images" in problem["detail"]
    assert nothing_queued(video_app)


def test_a_two_expert_run_offers_both_files_of_each_expert(
    video_app: Flask, client: FlaskClient, tmp_path: Path
) -> None:
    """Final files and every checkpoint: diffusers and ComfyUI, one pair per expert."""
    from app.trainings.models import TrainingRun
    from jobs.run_files import upload_checkpoint, upload_outputs
    from training.results import TrainResult

    dataset_id = dataset_of(video_app, clip("walk.mp4", 48, 16.0))
    run_id = start(client, dataset_id, "wan22-t2v-a14b").get_json()["id"]
    files = {}
    for expert in ("high_noise", "low_noise"):
        for kind, name in (("lora", f"lora_{expert}"), ("comfyui", f"lora_{expert}_comfyui")):
            files[f"{kind}_{expert}"] = tmp_path / f"{name}.safetensors"
            files[f"{kind}_{expert}"].write_bytes(expert.encode())
    result = TrainResult(
        steps_done=10, total_steps=10, final_loss=0.1, stopped=False, seconds=1.0,
        lora_path=str(files["lora_high_noise"]), comfyui_path=str(files["comfyui_high_noise"]),
        lora_files={kind: str(path) for kind, path in files.items()},
    )  # fmt: skip
    checkpoint = tmp_path / "checkpoints" / "step-000005"
    checkpoint.mkdir(parents=True)
    downloads = {}
    for kind in files:  # the names the trainer gives a checkpoint's files
        layout, _, expert = kind.partition("_")
        downloads[kind] = f"lora_{'diffusers' if layout == 'lora' else layout}_{expert}.safetensors"
        (checkpoint / downloads[kind]).write_bytes(f"step 5 {kind}".encode())
    (checkpoint / "state.json").write_text(json.dumps({"step": 5, "downloads": downloads}))
    with video_app.app_context():
        run = db.session.get(TrainingRun, run_id)
        stored = upload_checkpoint(run, checkpoint, 5)
        run.artifacts = {**upload_outputs(run, result), "checkpoints": {"5": stored}}
        run.status = "succeeded"
        db.session.commit()
    status = client.get(f"/api/runs/{run_id}").get_json()
    names = [f["name"] for f in status["checkpoint_downloads"][0]["files"]]
    assert names == ["5", "5-comfyui_high_noise", "5-lora_low_noise", "5-comfyui_low_noise"]
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert page.count(f"/runs/{run_id}/download/checkpoint/5") == 4
    assert "Checkpoint at step 5 (ComfyUI / A1111, low noise)" in page
    low = client.get(client.get(f"/runs/{run_id}/download/checkpoint/5-comfyui_low_noise").location)
    assert low.data == b"step 5 comfyui_low_noise"
    saved_as = low.headers["Content-Disposition"]
    assert f"attune-run-{run_id}-step-000005_comfyui_low_noise.safetensors" in saved_as
    first = client.get(client.get(f"/runs/{run_id}/download/checkpoint/5").location)
    assert first.data == b"step 5 lora_high_noise"
    assert client.get(f"/runs/{run_id}/download/checkpoint/5-comfyui").status_code == 404
    assert status["downloads"] == [
        "lora_high_noise", "comfyui_high_noise", "lora_low_noise", "comfyui_low_noise"
    ]  # fmt: skip
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "LoRA (diffusers, low noise)" in page and "LoRA (ComfyUI / A1111, high noise)" in page
    low = client.get(f"/runs/{run_id}/download/comfyui_low_noise")
    assert low.status_code == 302
    downloaded = client.get(low.location)
    assert downloaded.data == b"low_noise"
    assert "lora_low_noise_comfyui.safetensors" in downloaded.headers["Content-Disposition"]
    assert client.get(f"/runs/{run_id}/download/lora").status_code == 302  # the runs list's link
    assert client.get(f"/runs/{run_id}/download/lora_mid_noise").status_code == 404
    assert client.get(f"/runs/{run_id}/download/lorax").status_code == 404
    from tests.app.api_v1.support import Api, create_key_in_browser

    api = Api(video_app, create_key_in_browser(client))
    listed = api.get(f"/trainings/{run_id}/artifacts").get_json()["data"]
    assert [(f["kind"], f["filename"]) for f in listed] == [
        ("lora_high_noise", "lora_high_noise.safetensors"),
        ("comfyui_high_noise", "lora_high_noise_comfyui.safetensors"),
        ("lora_low_noise", "lora_low_noise.safetensors"),
        ("comfyui_low_noise", "lora_low_noise_comfyui.safetensors"),
        ("checkpoint", f"attune-run-{run_id}-step-000005_lora_high_noise.safetensors"),
        ("checkpoint", f"attune-run-{run_id}-step-000005_comfyui_high_noise.safetensors"),
        ("checkpoint", f"attune-run-{run_id}-step-000005_lora_low_noise.safetensors"),
        ("checkpoint", f"attune-run-{run_id}-step-000005_comfyui_low_noise.safetensors"),
    ]


def test_the_run_page_offers_the_captions_the_run_trained(
    video_app: Flask, client: FlaskClient, tmp_path: Path
) -> None:
    from app.datasets.models import DatasetItem
    from app.trainings.models import TrainingRun
    from jobs.run_files import upload_outputs
    from training.data.captions import write_captions_file
    from training.results import TrainResult

    dataset_id = dataset_of(video_app, image("cats/01.png"), image("02.png"))
    run_id = start(client, dataset_id, "tiny-sd").get_json()["id"]
    with video_app.app_context():
        ids = db.session.scalars(select(DatasetItem.id).where(DatasetItem.dataset_id == dataset_id))
        first, second = sorted(ids)
    trained = [(f"item-{first}.png", "sks, a cat"), (f"item-{second}.png", "photo of sks")]
    captions = write_captions_file(trained, tmp_path / "captions.txt")  # as the engine writes
    result = TrainResult(
        steps_done=10, total_steps=10, final_loss=0.1, stopped=False, seconds=1.0,
        captions_path=str(captions),
    )  # fmt: skip
    with video_app.app_context():
        run = db.session.get(TrainingRun, run_id)
        run.artifacts, run.status = upload_outputs(run, result), "succeeded"
        db.session.commit()

    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert f'href="/runs/{run_id}/download/captions"' in page
    assert "Captions trained (captions.txt)" in page
    link = client.get(f"/runs/{run_id}/download/captions")
    assert link.status_code == 302
    downloaded = client.get(link.location)
    assert f"attune-run-{run_id}-captions.txt" in downloaded.headers["Content-Disposition"]
    lines = downloaded.get_data(as_text=True).splitlines()
    assert lines[1:] == ["cats/01.png\tsks, a cat", "02.png\tphoto of sks"]  # the names uploaded
    from tests.app.api_v1.support import Api, create_key_in_browser

    api = Api(video_app, create_key_in_browser(client))
    listed = api.get(f"/trainings/{run_id}/artifacts").get_json()["data"]
    assert [(f["kind"], f["filename"]) for f in listed] == [
        ("captions", f"attune-run-{run_id}-captions.txt")
    ]
