"""/api/v1 trainings with a key: start (plan, quota and parameters checked by the same rules as
the browser), Idempotency-Key (one run and one reservation per key, 422 for another body, per
account, 24 hours, safe under a race), get, list in pages, cancel, continue, artifacts."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.db_types import utcnow
from app.extensions import db, get_settings
from app.trainings.models import QuotaPeriod, TrainingRun
from tests.app.api_v1.support import Api, assert_problem, create_key_in_browser
from tests.support.accounts import activate_plan
from tests.support.apps import DATABASES, running_app
from tests.support.datasets import ready_dataset
from tests.support.web import sign_up
from tests.support.world import build_world


def body(dataset_id: int, **parameters: Any) -> dict[str, Any]:
    """A tiny-sd training request."""
    return {"dataset_id": dataset_id, "family": "tiny-sd", "parameters": parameters}


def reservations(app: Flask) -> tuple[int, int, int]:
    """(runs, reserved seconds, active runs) of the account's quota period."""
    with app.app_context():
        runs = db.session.scalar(select(func.count()).select_from(TrainingRun)) or 0
        period = db.session.scalar(select(QuotaPeriod))
        return runs, period.reserved_seconds if period else 0, period.active_runs if period else 0


def test_a_run_starts_with_the_presets_defaults_and_can_be_read(app: Flask, api: Api) -> None:
    dataset_id = ready_dataset(app)
    started = api.post("/trainings", body(dataset_id, steps=10, rank=4))
    assert started.status_code == 201, started.get_json()
    run = started.get_json()
    assert started.headers["Location"] == f"/api/v1/trainings/{run['id']}"
    assert (run["status"], run["preset"], run["family"]) == ("queued", "character", "tiny-sd")
    assert run["parameters"]["steps"] == 10 and run["parameters"]["rank"] == 4
    assert run["parameters"]["resolution"] == 64  # the preset's default
    assert run["progress"] == {"step": 0, "total_steps": 10, "loss": None, "eta_seconds": None,
                               "queue_position": 1}  # fmt: skip
    assert run["gpu_seconds"] == {"reserved": 11, "used": 0.0} and run["trigger_word"] == "sks"
    assert api.get(f"/trainings/{run['id']}").get_json() == run
    usage = api.get("/usage").get_json()
    assert usage["gpu_seconds"]["reserved"] == 11 and usage["active_trainings"] == 1
    assert usage["plan"]["name"] == "pro"


def test_bad_requests_name_the_field_and_start_nothing(app: Flask, api: Api) -> None:
    dataset_id = ready_dataset(app)
    assert_problem(api.post("/trainings", body(dataset_id, steps=0)), 422, "parameters.steps")
    assert_problem(api.post("/trainings", body(dataset_id, stpes=5)), 422, "parameters.stpes")
    assert_problem(api.post("/trainings", {**body(dataset_id), "family": "sd99"}), 422, "family")
    assert_problem(api.post("/trainings", {**body(dataset_id), "preset": "motion"}), 422, "preset")
    assert_problem(api.post("/trainings", {"family": "tiny-sd"}), 422, "dataset_id")
    assert_problem(api.post("/trainings", {**body(dataset_id), "name": "x" * 121}), 422, "name")
    assert_problem(api.post("/trainings", {**body(dataset_id), "parameters": [1]}), 422,
                   "parameters")  # fmt: skip
    assert_problem(api.post("/trainings", {**body(dataset_id), "webhook": "x"}), 422, "webhook")
    assert_problem(api.post("/trainings", {**body(dataset_id), "hook": "x"}), 422, "hook")
    local = {**body(dataset_id), "webhook": "https://127.0.0.1/hook"}  # loopback: refused
    assert_problem(api.post("/trainings", local), 422, "webhook")
    assert_problem(api.post("/trainings", body(2**31 - 1)), 404)
    assert reservations(app) == (0, 0, 0)


def test_the_files_precision_is_chosen_per_run_and_checked(app: Flask, api: Api) -> None:
    dataset_id = ready_dataset(app)
    default = api.post("/trainings", body(dataset_id, steps=4)).get_json()
    assert default["parameters"]["save_precision"] == "bf16"  # the preset's
    full = api.post("/trainings", body(dataset_id, steps=4, save_precision="fp32")).get_json()
    assert full["parameters"]["save_precision"] == "fp32"
    with app.app_context():
        assert db.session.get(TrainingRun, full["id"]).config["save_precision"] == "fp32"
    refused = api.post("/trainings", body(dataset_id, steps=4, save_precision="fp16"))
    problem = assert_problem(refused, 422, "parameters.save_precision")
    assert "one of: bf16, fp32" in str(problem)
    assert api.get("/models").get_json()["parameters"]["save_precision"]["enum"] == ["bf16", "fp32"]


def test_a_run_whose_dataset_changed_cannot_be_continued_until_it_is_the_same_again(
    app: Flask, api: Api, signed_in: FlaskClient
) -> None:
    from app.datasets.models import DatasetItem

    dataset_id = ready_dataset(app)
    run_id = api.post("/trainings", body(dataset_id, steps=4)).get_json()["id"]
    with app.app_context():
        db.session.get(TrainingRun, run_id).status = "succeeded"
        db.session.commit()

    def caption(text: str | None) -> None:
        with app.app_context():
            item = db.session.scalars(
                select(DatasetItem).where(DatasetItem.dataset_id == dataset_id)
            ).one()
            item.caption = text
            db.session.commit()

    caption("a cat, edited after the run")
    before = reservations(app)
    refused = assert_problem(api.post(f"/trainings/{run_id}/continue", {"extra_steps": 2}), 409)
    assert "has changed since this run trained on it" in refused["detail"]
    assert "Duplicate with edits" in refused["detail"]
    assert reservations(app) == before  # nothing queued, nothing reserved
    page = signed_in.get(f"/runs/{run_id}").get_data(as_text=True)
    assert 'id="continue-refusal"' in page and 'name="extra_steps"' not in page

    caption(None)  # the data it trained on again
    assert api.post(f"/trainings/{run_id}/continue", {"extra_steps": 2}).status_code == 201
    page = signed_in.get(f"/runs/{run_id}").get_data(as_text=True)
    assert 'name="extra_steps"' in page


def test_a_new_run_starts_from_a_finished_runs_lora_of_the_same_model_and_rank(
    app: Flask,
) -> None:
    world = build_world(app)  # a succeeded run with its LoRA and a checkpoint stored
    api = Api(app, world.api_key)
    with app.app_context():
        source = db.session.get(TrainingRun, world.run_id)
        source.config = {**source.config, "rank": 4}
        fresh = TrainingRun(
            user_id=world.user_id, dataset_id=world.dataset_id, name="queued", family="tiny-sd",
            config={"rank": 4}, total_steps=4, queue="gpu-cpu",
        )  # fmt: skip
        db.session.add(fresh)
        db.session.commit()
        fresh_id = fresh.id
    new = {**body(world.dataset_id, steps=6, learning_rate=5e-4), "start_from": world.run_id}
    started = api.post("/trainings", new)
    assert started.status_code == 201, started.get_json()
    run = started.get_json()
    assert run["start_from_id"] == world.run_id and run["parent_id"] is None
    assert run["parameters"]["rank"] == 4  # the source's rank, not the preset's
    assert run["parameters"]["learning_rate"] == 5e-4 and run["progress"]["total_steps"] == 6

    held = reservations(app)
    for value, says in ((fresh_id, "whose LoRA is kept"), (2**31 - 1, "your finished runs"),
                        ("abc", "your finished runs"), (True, "your finished runs"),
                        (-1, "your finished runs"), (2**40, "your finished runs")):  # fmt: skip
        refused = assert_problem(api.post("/trainings", {**new, "start_from": value}), 422,
                                 "start_from")  # fmt: skip
        assert says in refused["errors"]["start_from"], (value, refused)
    other_rank = {**new, "parameters": {"rank": 8}}
    assert "keeps that rank" in assert_problem(api.post("/trainings", other_rank), 422,
                                               "start_from")["errors"]["start_from"]  # fmt: skip
    with app.app_context():
        db.session.get(TrainingRun, world.run_id).family = "sd15"
        db.session.commit()
    refused = assert_problem(api.post("/trainings", new), 422, "start_from")
    assert "fits only the base model" in refused["errors"]["start_from"]
    assert reservations(app) == held  # nothing refused was queued or reserved
    stranger = Api(app, build_world(app, "eve@example.com").api_key)
    theirs = {**body(stranger_dataset(app, "eve@example.com")), "start_from": world.run_id}
    assert_problem(stranger.post("/trainings", theirs), 422, "start_from")


def stranger_dataset(app: Flask, email: str) -> int:
    """The id of the dataset build_world gave `email`."""
    from app.accounts.models import User
    from app.datasets.models import Dataset

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        return db.session.scalars(select(Dataset.id).where(Dataset.user_id == user.id)).one()


def test_account_rules_answer_409(app: Flask, signed_in: FlaskClient) -> None:
    api = Api(app, create_key_in_browser(signed_in))
    dataset_id = ready_dataset(app)
    assert api.get("/models").get_json()["data"][0]["available"] is False
    assert api.get("/usage").get_json()["plan"] is None
    assert "Subscribe" in assert_problem(api.post("/trainings", body(dataset_id)), 409)["detail"]
    activate_plan(app, "ada@example.com", "hobby")
    assert api.post("/trainings", body(dataset_id, steps=5)).status_code == 201
    second = api.post("/trainings", body(dataset_id, steps=5))
    assert "1 training run(s) at a time" in assert_problem(second, 409)["detail"]


def test_a_retry_with_the_same_key_returns_the_same_run_and_reserves_once(
    app: Flask, api: Api
) -> None:
    dataset_id = ready_dataset(app)
    request, headers = body(dataset_id, steps=10), {"Idempotency-Key": "run-cats-1"}
    first = api.post("/trainings", request, headers=headers)
    again = api.post("/trainings", dict(reversed(request.items())), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert reservations(app) == (1, 11, 1)
    other = api.post("/trainings", body(dataset_id, steps=11), headers=headers)
    assert_problem(other, 422, "Idempotency-Key")
    assert reservations(app) == (1, 11, 1)
    fresh = api.post("/trainings", request, headers={"Idempotency-Key": "run-cats-2"})
    assert fresh.get_json()["id"] != first.get_json()["id"]
    assert reservations(app) == (2, 22, 2)
    for bad in ("", "x" * 256, "naïve"):
        assert_problem(api.post("/trainings", request, headers={"Idempotency-Key": bad}), 422,
                       "Idempotency-Key")  # fmt: skip


def test_keys_are_per_account_and_kept_a_day(
    app: Flask, api: Api, other_client: Callable[[str], FlaskClient]
) -> None:
    dataset_id = ready_dataset(app)
    eve_client = other_client("eve@example.com")
    activate_plan(app, "eve@example.com", "pro")
    eve, eve_dataset = Api(app, create_key_in_browser(eve_client)), ready_dataset(
        app, "eve@example.com")  # fmt: skip
    headers = {"Idempotency-Key": "nightly"}
    mine = api.post("/trainings", body(dataset_id), headers=headers).get_json()["id"]
    hers = eve.post("/trainings", body(eve_dataset), headers=headers).get_json()["id"]
    assert mine != hers
    with time_machine.travel(utcnow() + timedelta(hours=25), tick=False):
        later = api.post("/trainings", body(dataset_id), headers=headers)
        assert later.status_code == 201 and "Idempotent-Replayed" not in later.headers
        assert later.get_json()["id"] not in (mine, hers)
        from app.api_v1.idempotency import forget_expired_keys

        with app.app_context():
            assert forget_expired_keys() == 1  # eve's; the renewed one stays


def test_a_refused_start_frees_its_key_for_the_corrected_retry(
    app: Flask, signed_in: FlaskClient
) -> None:
    api = Api(app, create_key_in_browser(signed_in))
    dataset_id = ready_dataset(app)
    headers = {"Idempotency-Key": "first-try"}
    assert_problem(api.post("/trainings", body(dataset_id), headers=headers), 409)  # no plan yet
    activate_plan(app, "ada@example.com", "pro")
    assert api.post("/trainings", body(dataset_id), headers=headers).status_code == 201
    assert reservations(app)[0] == 1


@pytest.fixture(params=DATABASES)
def race_app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """An app of its own for the threads of the race."""
    with running_app(request, request.param) as application:
        yield application


def test_racing_retries_with_one_key_make_one_run(race_app: Flask) -> None:
    client = race_app.test_client()
    sign_up(client)
    activate_plan(race_app, "ada@example.com", "studio")
    key, dataset_id = create_key_in_browser(client), ready_dataset(race_app)
    apis = [Api(race_app, key) for _ in range(6)]
    barrier, answers = threading.Barrier(len(apis)), []

    def go(api: Api) -> None:
        barrier.wait()
        response = api.post("/trainings", body(dataset_id), headers={"Idempotency-Key": "race"})
        answers.append((response.status_code, (response.get_json() or {}).get("id")))

    threads = [threading.Thread(target=go, args=(api,)) for api in apis]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {status for status, _ in answers} <= {201, 409}, answers
    assert len({run for status, run in answers if status == 201}) == 1, answers
    assert reservations(race_app)[0] == 1


def test_runs_are_listed_in_pages_and_cancelled(app: Flask, api: Api) -> None:
    dataset_id = ready_dataset(app)
    ids = [api.post("/trainings", body(dataset_id, steps=5)).get_json()["id"] for _ in range(2)]
    page = api.get("/trainings?limit=1").get_json()
    assert [r["id"] for r in page["data"]] == [ids[1]]
    rest = api.get(f"/trainings?limit=1&cursor={page['next_cursor']}").get_json()
    assert [r["id"] for r in rest["data"]] == [ids[0]] and rest["next_cursor"] is None
    cancelled = api.post(f"/trainings/{ids[0]}/cancel")
    assert cancelled.status_code == 202 and cancelled.get_json()["status"] == "cancelled"
    assert "already finished" in assert_problem(api.post(f"/trainings/{ids[0]}/cancel"), 409)[
        "detail"]  # fmt: skip
    assert reservations(app) == (2, 11, 1)  # 10 + 5 x 0.08 s up, of the run still queued


def test_a_finished_run_lists_download_urls_and_can_be_continued(app: Flask) -> None:
    world = build_world(app)  # a succeeded run with its LoRA, ComfyUI file and sample stored
    api, run_id = Api(app, world.api_key), world.run_id
    files = api.get(f"/trainings/{run_id}/artifacts").get_json()
    kinds = [(f["kind"], f["name"], f["filename"]) for f in files["data"]]
    assert kinds == [
        ("lora", None, "lora.safetensors"),
        ("comfyui", None, "comfy.safetensors"),
        ("checkpoint", "4", f"attune-run-{run_id}-step-000004.safetensors"),
        ("sample", "sample-0001.png", f"attune-run-{run_id}-sample-0001.png"),
    ]
    with app.app_context():
        assert files["expires_in"] == get_settings().download_url_expiry_s
    lora = api.client.get(files["data"][0]["url"].removeprefix("http://localhost"))
    assert lora.status_code == 200 and lora.data == b"x"
    assert "attachment" in lora.headers["Content-Disposition"]
    assert_problem(api.post(f"/trainings/{run_id}/continue", {"extra_steps": 0}), 422,
                   "extra_steps")  # fmt: skip
    assert_problem(api.post(f"/trainings/{run_id}/continue", {}), 422, "extra_steps")
    more = api.post(f"/trainings/{run_id}/continue", {"extra_steps": 3},
                    headers={"Idempotency-Key": "more-1"})  # fmt: skip
    assert more.status_code == 201
    assert more.get_json()["parent_id"] == run_id
    assert more.get_json()["progress"]["total_steps"] == 7  # 4 + 3
    replay = api.post(f"/trainings/{run_id}/continue", {"extra_steps": 3},
                      headers={"Idempotency-Key": "more-1"})  # fmt: skip
    assert replay.get_json()["id"] == more.get_json()["id"]
    assert api.get(f"/trainings/{more.get_json()['id']}/artifacts").get_json()["data"] == []


def test_another_persons_runs_are_404(
    app: Flask, api: Api, other_client: Callable[[str], FlaskClient]
) -> None:
    world = build_world(app)
    dataset_id, run_id = world.dataset_id, world.run_id
    eve = Api(app, create_key_in_browser(other_client("eve@example.com")))
    for path in (f"/trainings/{run_id}", f"/trainings/{run_id}/artifacts"):
        assert_problem(eve.get(path), 404)
    assert_problem(eve.post(f"/trainings/{run_id}/cancel"), 404)
    assert_problem(eve.post(f"/trainings/{run_id}/continue", {"extra_steps": 1}), 404)
    assert_problem(eve.post("/trainings", body(dataset_id)), 404)
    assert eve.get("/trainings").get_json() == {"data": [], "next_cursor": None}


def test_models_list_the_families_with_presets_and_limits(api: Api) -> None:
    models = api.get("/models").get_json()
    (tiny,) = models["data"]
    assert tiny["name"] == "tiny-sd" and tiny["available"] is True
    assert tiny["resolution"] == {"default": 64, "min": 32, "max": 512, "multiple": 16}
    assert [p["name"] for p in tiny["presets"]] == ["character", "style", "product"]
    assert tiny["presets"][0]["parameters"]["steps"] == 30
    # The bench figures until a run of it has been measured here.
    assert tiny["estimate"] == {"startup_seconds": 10, "seconds_per_step": 0.08, "measured_runs": 0}
    assert models["parameters"]["steps"] == {"type": "integer", "minimum": 1, "maximum": 20000,
                                             "label": "Steps"}  # fmt: skip


def test_a_run_takes_its_own_webhook(request: pytest.FixtureRequest) -> None:
    from tests.support.webhooks import DEVELOPMENT

    with running_app(request, "sqlite", DEVELOPMENT) as app:
        client = app.test_client()
        sign_up(client)
        activate_plan(app, "ada@example.com", "pro")
        api, dataset_id = Api(app, create_key_in_browser(client)), ready_dataset(app)
        hooked = {**body(dataset_id), "webhook": "http://127.0.0.1:9/run",
                  "webhook_events_filter": ["completed"]}  # fmt: skip
        started = api.post("/trainings", hooked)
        assert started.status_code == 201, started.get_json()
        run = started.get_json()
        assert (run["webhook"], run["webhook_events_filter"]) == (
            "http://127.0.0.1:9/run", ["completed"])  # fmt: skip
        odd = {**hooked, "webhook_events_filter": ["sometimes"]}
        assert_problem(api.post("/trainings", odd), 422, "webhook_events_filter")
