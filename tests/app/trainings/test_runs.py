"""Starting runs: plan gating, per-field validation, quota reservation races, isolation."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from tests.support.accounts import activate_plan
from tests.support.apps import DATABASES, running_app
from tests.support.datasets import ready_dataset
from tests.support.runs import start
from tests.support.web import api_headers, csrf_token, sign_up


@pytest.fixture
def planned(app: Flask, signed_in: FlaskClient) -> tuple[FlaskClient, int]:
    """A signed-in person on the Pro plan with a ready dataset."""
    activate_plan(app, "ada@example.com", "pro")
    return signed_in, ready_dataset(app)


def test_starting_a_run_queues_it_with_its_reservation(
    app: Flask, planned: tuple[FlaskClient, int]
) -> None:
    client, dataset_id = planned
    response = start(client, dataset_id, steps=10, rank=4)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "queued" and body["total_steps"] == 10
    assert body["queue_position"] == 1
    from app.trainings.models import QuotaPeriod, TrainingRun

    with app.app_context():
        run = db.session.get(TrainingRun, body["id"])
        assert run.reservation_open and run.reserved_gpu_seconds == 11  # 10 s + 10 x 0.08 s, up
        assert run.config["trigger_word"] == "sks" and run.config["rank"] == 4
        assert run.config["sample_prompts"] == ["a photo of sks"]
        period = db.session.scalar(select(QuotaPeriod))
        assert (period.reserved_seconds, period.active_runs) == (11, 1)


def test_starting_a_run_reads_the_standing_once(
    app: Flask, planned: tuple[FlaskClient, int]
) -> None:
    """One request, one look at the subscription and one at the ledger (not five and two)."""
    from sqlalchemy import event

    client, dataset_id = planned
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    body = {"dataset_id": dataset_id, "family": "tiny-sd", "params": {"steps": 10, "rank": 4}}
    headers = api_headers(client)
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.post("/api/runs", json=body, headers=headers).status_code == 201
    finally:
        event.remove(engine, "before_cursor_execute", record)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len([s for s in reads if "FROM subscriptions" in s]) == 1, reads
    assert len([s for s in reads if "FROM gpu_usage" in s]) == 1, reads


def test_without_a_plan_runs_cannot_start(app: Flask, signed_in: FlaskClient) -> None:
    dataset_id = ready_dataset(app)
    response = start(signed_in, dataset_id, steps=10)
    assert response.status_code == 409
    assert "Subscribe to a plan" in response.get_json()["error"]


def test_bad_parameters_get_400_with_per_field_errors(planned: tuple[FlaskClient, int]) -> None:
    client, dataset_id = planned
    response = start(
        client, dataset_id, steps=0, rank="many", learning_rate=1, resolution=70,
        sample_prompts=["x" * 301], seed=1.5,
    )  # fmt: skip
    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert set(errors) == {"steps", "rank", "learning_rate", "resolution", "sample_prompts", "seed"}
    assert "between 1 and 20000" in errors["steps"]
    assert "multiple of 16" in errors["resolution"]


def test_the_form_explains_the_resolution_range_and_why_a_preset_is_off(
    planned: tuple[FlaskClient, int],
) -> None:
    client, _ = planned
    page = client.get("/runs/new").get_data(as_text=True)
    assert "32 to 512 px, a multiple of 16; 64 by default." in page
    assert '{"tiny-sd": "32 to 512 px, a multiple of 16; 64 by default."}' in page
    assert '{"motion": "for video base models only"}' in page


def test_the_form_shows_errors_next_to_fields(planned: tuple[FlaskClient, int]) -> None:
    client, dataset_id = planned
    token = csrf_token(client.get("/runs/new").get_data(as_text=True))
    response = client.post(
        "/runs/new",
        data={"csrf_token": token, "dataset_id": dataset_id, "family": "tiny-sd",
              "preset": "character", "steps": "-3", "rank": "8"},
    )  # fmt: skip
    assert response.status_code == 400
    assert "Steps must be between 1 and 20000." in response.get_data(as_text=True)


def test_the_form_offers_the_files_precision_and_the_run_page_tells_it(
    app: Flask, planned: tuple[FlaskClient, int]
) -> None:
    client, dataset_id = planned
    page = client.get("/runs/new").get_data(as_text=True)
    assert "Precision of the LoRA files" in page and "fp32 (full precision" in page
    fields = {"dataset_id": dataset_id, "family": "tiny-sd", "preset": "character", "steps": "4"}
    refused = client.post("/runs/new", data={"csrf_token": csrf_token(page), **fields,
                                             "save_precision": "fp64"})  # fmt: skip
    assert refused.status_code == 400
    assert "Precision of the LoRA files must be one of: bf16, fp32." in refused.get_data(
        as_text=True
    )
    started = client.post("/runs/new", data={"csrf_token": csrf_token(page), **fields,
                                             "save_precision": "fp32"})  # fmt: skip
    assert started.status_code == 302, started.get_data(as_text=True)
    from app.trainings.models import TrainingRun

    with app.app_context():
        run = db.session.scalar(select(TrainingRun))
        assert run.config["save_precision"] == "fp32"
    assert "files in fp32" in client.get(started.headers["Location"]).get_data(as_text=True)


def test_the_form_starts_a_run_from_a_finished_runs_lora_and_its_page_says_so(
    app: Flask, planned: tuple[FlaskClient, int]
) -> None:
    from app.accounts.models import User
    from app.trainings.models import TrainingRun
    from tests.app.privacy.support import add_run

    client, dataset_id = planned
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "ada@example.com"))
        source_id = add_run(user_id, dataset_id)  # succeeded, rank 4, a checkpoint stored
    page = client.get("/runs/new").get_data(as_text=True)
    assert f'<option value="{source_id}">portrait · Tiny SD (CPU demo) · rank 4</option>' in page
    fields = {"csrf_token": csrf_token(page), "dataset_id": dataset_id, "family": "tiny-sd",
              "preset": "style", "steps": "8"}  # fmt: skip
    refused = client.post("/runs/new", data={**fields, "start_from": source_id, "rank": "16"})
    assert refused.status_code == 400
    assert "a run started from it keeps that rank" in refused.get_data(as_text=True)
    started = client.post("/runs/new", data={**fields, "start_from": source_id})
    assert started.status_code == 302, started.get_data(as_text=True)
    with app.app_context():
        run = db.session.scalars(select(TrainingRun).where(TrainingRun.id != source_id)).one()
        assert (run.start_from_run_id, run.config["rank"], run.parent_run_id) == (
            source_id,
            4,
            None,
        )
    shown = client.get(started.headers["Location"]).get_data(as_text=True)
    assert "Started from the LoRA of" in shown and f'href="/runs/{source_id}">portrait</a>' in shown


def test_unknown_family_and_preset_are_refused(planned: tuple[FlaskClient, int]) -> None:
    client, dataset_id = planned
    body = {"dataset_id": dataset_id, "family": "sd99", "preset": "character", "params": {}}
    response = client.post("/api/runs", json=body, headers=api_headers(client))
    assert response.status_code == 400 and "family" in response.get_json()["errors"]
    body = {"dataset_id": dataset_id, "family": "tiny-sd", "preset": "motion", "params": {}}
    response = client.post("/api/runs", json=body, headers=api_headers(client))
    assert response.status_code == 400 and "preset" in response.get_json()["errors"]


def test_cancelling_a_queued_run_releases_its_reservation(
    app: Flask, planned: tuple[FlaskClient, int]
) -> None:
    client, dataset_id = planned
    run_id = start(client, dataset_id, steps=10).get_json()["id"]
    token = csrf_token(client.get(f"/runs/{run_id}").get_data(as_text=True))
    assert client.post(f"/runs/{run_id}/cancel", data={"csrf_token": token}).status_code == 302
    assert client.get(f"/api/runs/{run_id}").get_json()["status"] == "cancelled"
    from app.trainings.models import QuotaPeriod

    with app.app_context():
        period = db.session.scalar(select(QuotaPeriod))
        assert (period.reserved_seconds, period.active_runs) == (0, 0)


def test_estimate_shows_what_the_run_leaves(planned: tuple[FlaskClient, int]) -> None:
    client, _ = planned
    body = client.get("/api/runs/estimate?family=tiny-sd&steps=100").get_json()
    assert body["gpu_seconds"] == 18  # the bench figures: 10 s + 100 x 0.08 s
    assert body["measured_runs"] == 0
    assert body["allowance_seconds"] == 20 * 3600
    assert body["left_after_seconds"] == 20 * 3600 - 18
    assert client.get("/api/runs/estimate?family=nope&steps=1").status_code == 400


def _measured_run(app: Flask, speed: tuple[float, float], **fields: object) -> None:
    """A finished tiny-sd run that took (start-up seconds, seconds per step)."""
    from app.accounts.models import User
    from app.db_types import utcnow
    from app.trainings.models import TrainingRun

    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "ada@example.com"))
        values = {"family": "tiny-sd", "queue": "gpu-cpu", "status": "succeeded", **fields}
        db.session.add(
            TrainingRun(user_id=user_id, name="earlier", config={}, total_steps=100,
                        startup_seconds=speed[0], seconds_per_step=speed[1],
                        finished_at=utcnow(), **values)
        )  # fmt: skip
        db.session.commit()


def test_the_estimate_is_the_median_of_recent_runs_of_the_family_on_its_gpu_class(
    app: Flask, planned: tuple[FlaskClient, int]
) -> None:
    client, dataset_id = planned
    for speed in ((8.0, 0.05), (12.0, 0.06), (30.0, 0.5)):  # one on a busy machine
        _measured_run(app, speed)
    _measured_run(app, (1.0, 0.001), queue="gpu-80gb")  # another GPU class
    _measured_run(app, (1.0, 0.001), status="cancelled")  # stopped before its export
    _measured_run(app, (1.0, 0.001), family="sd15", queue="gpu-24gb")
    body = client.get("/api/runs/estimate?family=tiny-sd&steps=3000").get_json()
    assert (body["gpu_seconds"], body["measured_runs"]) == (192, 3)  # 12 s + 3000 x 0.06 s
    run_id = start(client, dataset_id, steps=3000).get_json()["id"]
    from app.trainings.models import TrainingRun

    with app.app_context():
        assert db.session.get(TrainingRun, run_id).reserved_gpu_seconds == 192


def test_another_persons_run_is_404_everywhere(
    planned: tuple[FlaskClient, int], other_client: Callable[[str], FlaskClient]
) -> None:
    client, dataset_id = planned
    run_id = start(client, dataset_id, steps=10).get_json()["id"]
    eve = other_client("eve@example.com")
    token = csrf_token(eve.get("/dashboard").get_data(as_text=True))
    for path in (f"/runs/{run_id}", f"/api/runs/{run_id}", f"/runs/{run_id}/download/lora",
                 f"/runs/{run_id}/download/comfyui", f"/runs/{run_id}/download/checkpoint/1",
                 f"/runs/{run_id}/download/sample/x.png", f"/runs/new?from={run_id}"):  # fmt: skip
        assert eve.get(path).status_code == 404, path
    for path in (f"/runs/{run_id}/cancel", f"/runs/{run_id}/continue"):
        assert eve.post(path, data={"csrf_token": token, "extra_steps": 5}).status_code == 404
    response = eve.post(
        "/api/runs",
        json={"dataset_id": dataset_id, "family": "tiny-sd", "preset": "character", "params": {}},
        headers=api_headers(eve),
    )
    assert response.status_code == 404


@pytest.fixture(params=DATABASES)
def small_quota_app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """Hobby with 1 GPU-hour and 10 concurrent runs; Pro with 2 concurrent runs."""
    plans = (
        '[{"name": "hobby", "gpu_hours": 1, "concurrent_runs": 10},'
        ' {"name": "pro", "concurrent_runs": 2}]'
    )
    with running_app(request, request.param, {"plans_json": plans}) as app:
        yield app


def _race(app: Flask, plan: str, steps: int, starters: int) -> list[int]:
    sign_up(app.test_client())
    activate_plan(app, "ada@example.com", plan)
    dataset_id = ready_dataset(app)
    clients = []
    for _ in range(starters):
        client = app.test_client()
        from tests.support.web import sign_in

        sign_in(client, "ada@example.com")
        clients.append((client, api_headers(client)))
    barrier, codes = threading.Barrier(starters), []

    def go(client: FlaskClient, headers: dict[str, str]) -> None:
        barrier.wait()
        body = {"dataset_id": dataset_id, "family": "tiny-sd", "preset": "character",
                "params": {"steps": steps}}  # fmt: skip
        codes.append(client.post("/api/runs", json=body, headers=headers).status_code)

    threads = [threading.Thread(target=go, args=pair) for pair in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(codes)


def test_racing_starts_cannot_overspend_the_quota(small_quota_app: Flask) -> None:
    # 1 GPU-hour = 3600 s; each run reserves 10 + 12000 * 0.08 = 970 s, so three fit.
    codes = _race(small_quota_app, "hobby", 12000, 6)
    assert codes == [201, 201, 201, 409, 409, 409]


def test_racing_starts_respect_the_concurrent_run_limit(small_quota_app: Flask) -> None:
    codes = _race(small_quota_app, "pro", 10, 5)
    assert codes == [201, 201, 409, 409, 409]


def test_video_samples_show_as_previews_that_open_the_mp4(app: Flask) -> None:
    from app.trainings.models import Generation, TrainingRun
    from tests.support.accounts import signed_in_client
    from tests.support.world import build_world

    world = build_world(app)
    with app.app_context():
        run = db.session.get(TrainingRun, world.run_id)
        generation = db.session.get(Generation, world.generation_id)
        assert run is not None and generation is not None
        prefix = run.storage_prefix()
        names = ["sample-0001.webp", "sample-0001.mp4", "sample-0002.png"]
        run.artifacts = {**(run.artifacts or {}), "samples": [prefix + n for n in names]}
        generation.media_keys = [f"{prefix}generations/1/clip-0.mp4"]  # no preview: a player
        db.session.commit()
    page = signed_in_client(app, "owner@example.com").get(f"/runs/{world.run_id}").text
    samples = page.split('data-field="samples"', 1)[1].split("</div>", 1)[0]
    assert samples.count("<img") == 2 and "<video" not in samples
    assert 'title="Open the MP4"' in samples and "sample/sample-0001.mp4" in samples
    assert not re.search(r'<img src="[^"]*\.mp4"', page)
    assert re.search(r'<video src="[^"]*clip-0\.mp4"[^>]*controls', page)


def test_how_to_use_names_the_base_model_to_load(
    app: Flask, planned: tuple[FlaskClient, int]
) -> None:
    import html

    from app.accounts.models import User
    from app.extensions import get_settings
    from tests.app.privacy.support import add_run

    client, _ = planned
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "ada@example.com"))
        run_id = add_run(user_id)
        tiny = get_settings().models_dir / "tiny-sd"
    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert f'<code id="base-model">{tiny}</code> (the tiny random model this server built)' in page
    loading = f'DiffusionPipeline.from_pretrained("{tiny}", dtype=torch.bfloat16).to("cuda")'
    assert loading in html.unescape(page)
    assert 'pipe.load_lora_weights("pytorch_lora_weights.safetensors")' in html.unescape(page)


def test_how_to_use_fits_the_family_video_and_two_experts(
    app: Flask, planned: tuple[FlaskClient, int]
) -> None:
    import html

    from app.accounts.models import User
    from app.trainings.models import TrainingRun
    from tests.app.privacy.support import add_run

    client, _ = planned
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "ada@example.com"))
        run = db.session.get(TrainingRun, add_run(user_id))
        prefix = run.storage_prefix()
        run.family, run.config = "wan22-t2v-a14b", {"trigger_word": "sks"}
        kinds = [f"{layout}_{expert}" for layout in ("lora", "comfyui")
                 for expert in ("high_noise", "low_noise")]  # fmt: skip
        run.artifacts = {kind: f"{prefix}lora/{kind}.safetensors" for kind in kinds}
        db.session.commit()
        run_id = run.id
    page = html.unescape(client.get(f"/runs/{run_id}").get_data(as_text=True))
    assert 'pipe.load_lora_weights("lora_high_noise.safetensors")\n' in page
    low = 'pipe.load_lora_weights("lora_low_noise.safetensors", load_into_transformer_2=True)'
    assert low in page
    assert 'frames = pipe("sks ...").frames[0]' in page and "fps=16)" in page
    assert "LoraLoaderModelOnly" in page and ".images[0]" not in page


def test_run_artifacts_change_through_one_accessor_that_assigns_fresh_json() -> None:
    from app.trainings.artifacts import RunArtifacts
    from app.trainings.models import TrainingRun

    run = TrainingRun(artifacts={"lora": "k/lora"})
    before = run.artifacts
    artifacts = RunArtifacts(run)
    artifacts.add_sample("k/s0")
    artifacts.add_checkpoint(5, {"lora": "k/c5"})
    artifacts.add_checkpoint(10, {"lora": "k/c10"})
    artifacts.drop_checkpoints([5])
    assert run.artifacts is not before and before == {"lora": "k/lora"}
    assert run.artifacts == {
        "lora": "k/lora",
        "samples": ["k/s0"],
        "checkpoints": {"10": {"lora": "k/c10"}},
    }
    artifacts.clear("samples")
    assert run.artifacts == {"lora": "k/lora", "checkpoints": {"10": {"lora": "k/c10"}}}
    artifacts.clear()
    assert run.artifacts == {}
