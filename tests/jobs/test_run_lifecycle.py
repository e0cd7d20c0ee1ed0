"""Runs on a real worker: live progress, cancel, SIGKILL and resume, honest metering."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from app.extensions import db
from tests.jobs.http_session import Person, wait_for
from tests.support.accounts import activate_plan
from tests.support.apps import running_app
from tests.support.live_service import LiveService
from tests.support.lora_checks import assert_loads_and_changes_output
from tests.support.smtp import SmtpServer

FINISHED = ("succeeded", "failed", "cancelled")


def ledger(service: LiveService, run_id: int) -> list[tuple[str, float, bool]]:
    """The run's metered segments: (key, seconds, charged)."""
    from app.billing.models import GpuUsage

    with service.app.app_context():
        rows = db.session.scalars(
            select(GpuUsage).where(GpuUsage.run_id == run_id).order_by(GpuUsage.id)
        ).all()
        return [(row.segment_key, row.gpu_seconds, row.charged) for row in rows]


def ledger_all(service: LiveService) -> list[tuple[str, float, bool]]:
    """Every metered segment: (key, seconds, charged)."""
    from app.billing.models import GpuUsage

    with service.app.app_context():
        rows = db.session.scalars(select(GpuUsage).order_by(GpuUsage.id)).all()
        return [(row.segment_key, row.gpu_seconds, row.charged) for row in rows]


def reservation(service: LiveService) -> tuple[int, int]:
    """(reserved seconds, active runs) of the only quota period."""
    from app.trainings.models import QuotaPeriod

    with service.app.app_context():
        period = db.session.scalar(select(QuotaPeriod))
        return period.reserved_seconds, period.active_runs


@pytest.fixture
def ada(live_service: LiveService) -> Person:
    """Ada on the Pro plan."""
    person = Person(live_service, "ada@example.com")
    activate_plan(live_service.app, "ada@example.com", "pro")
    return person


def test_live_progress_samples_and_files_that_load_in_diffusers(
    live_service: LiveService, ada: Person, mailbox: SmtpServer, tmp_path: Path
) -> None:
    dataset_id = ada.ready_dataset(live_service)
    run_id = ada.start_run(dataset_id, steps=6, rank=4, sample_every=3, checkpoint_every=3)
    seen_steps: set[int] = set()

    def finished() -> dict[str, object] | None:
        status = ada.run_status(run_id)
        seen_steps.add(int(status["step"]))
        return status if status["status"] in FINISHED else None

    status = wait_for(live_service, finished, 240, "training")
    assert status["status"] == "succeeded", status
    assert len(seen_steps) >= 2  # progress was observed moving, not only the end
    assert [point[0] for point in status["loss_curve"]] == [1, 2, 3, 4, 5, 6]
    assert len(status["samples"]) == 2 and status["checkpoints"] == [3, 6]
    assert any("checkpoint saved at step 3" in line for line in status["log"])
    sample = ada.get(f"/runs/{run_id}/download/sample/{status['samples'][0]}")
    assert sample.status_code == 200 and sample.content.startswith(b"\x89PNG")

    lora = tmp_path / "lora.safetensors"
    lora.write_bytes(ada.get(f"/runs/{run_id}/download/lora").content)
    comfy = tmp_path / "comfy.safetensors"
    comfy.write_bytes(ada.get(f"/runs/{run_id}/download/comfyui").content)
    checkpoint = tmp_path / "checkpoint.safetensors"
    response = ada.get(f"/runs/{run_id}/download/checkpoint/3")
    assert "attune-run-" in response.headers["Content-Disposition"]
    checkpoint.write_bytes(response.content)
    checkpoint_comfy = tmp_path / "checkpoint_comfy.safetensors"
    response = ada.get(f"/runs/{run_id}/download/checkpoint/3-comfyui")
    assert "step-000003_comfyui.safetensors" in response.headers["Content-Disposition"]
    checkpoint_comfy.write_bytes(response.content)
    assert_loads_and_changes_output(live_service, [lora, comfy, checkpoint, checkpoint_comfy])
    _run_the_pages_how_to_use(ada.get(f"/runs/{run_id}").text, lora, tmp_path / "how-to")

    segments = ledger(live_service, run_id)
    assert [(key, charged) for key, _, charged in segments] == [(f"run:{run_id}:attempt:1", True)]
    assert segments[0][1] > 0
    assert reservation(live_service) == (0, 0)
    # What it took is kept, and the next estimate of the family is calibrated from it.
    from app.trainings.models import TrainingRun

    with live_service.app.app_context():
        measured = db.session.get(TrainingRun, run_id)
        took = (measured.startup_seconds, measured.seconds_per_step)
    assert took[1] > 0 and took[0] + 6 * took[1] == pytest.approx(segments[0][1], abs=0.05)
    assert ada.get("/api/runs/estimate?family=tiny-sd&steps=6").json()["measured_runs"] >= 1
    ready = wait_for(
        live_service,
        lambda: [m for m in mailbox.messages if "is ready" in m["Subject"]],
        10,
        "the run-finished e-mail",
    )
    assert ready[0]["To"] == "ada@example.com" and f"/runs/{run_id}" in ready[0].get_content()

    # Try it: a prompt rendered with the LoRA, metered and stored as generated media.
    ada.post_form(
        f"/runs/{run_id}/generate", {"prompt": "sks_noise on a beach", "strength": "0.8",
                                     "seed": "7"}, page=f"/runs/{run_id}",
    )  # fmt: skip
    with live_service.app.app_context():
        from app.trainings.models import Generation

        generation_id = db.session.scalars(
            select(Generation.id).where(Generation.run_id == run_id)
        ).one()  # ids are not 1 here: earlier tests used the database's sequence
    generation = wait_for(
        live_service,
        lambda: (
            (g := ada.get(f"/api/generations/{generation_id}").json())["status"] in FINISHED and g
        ),
        240,
        "generation",
    )
    assert generation["status"] == "succeeded", generation
    image = ada.get(f"/generations/{generation_id}/media/{generation['media'][0]}")
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    metered = [(k, c) for k, _, c in ledger_all(live_service)]
    assert (f"generation:{generation_id}", True) in metered

    # Continue the finished run for two more steps: it resumes from its final checkpoint.
    more = ada.post_form(f"/runs/{run_id}/continue", {"extra_steps": 2}, page=f"/runs/{run_id}")
    child_id = int(more.url.rsplit("/", 1)[-1])
    assert child_id != run_id
    child = wait_for(
        live_service,
        lambda: (s := ada.run_status(child_id))["status"] in FINISHED and s,
        240,
        "continued run",
    )
    assert child["status"] == "succeeded" and child["step"] == 8
    assert any("resuming from the checkpoint at step 6" in line for line in child["log"])


@pytest.mark.parametrize("live_service", ["sqlite"], indirect=True)
def test_a_new_run_starts_from_a_finished_runs_lora_with_its_own_settings(
    live_service: LiveService, ada: Person
) -> None:
    dataset_id = ada.ready_dataset(live_service, images=2)
    first = ada.start_run(dataset_id, steps=4, rank=4, checkpoint_every=4, sample_every=0)
    done = wait_for(
        live_service, lambda: (s := ada.run_status(first))["status"] in FINISHED and s, 240, "run"
    )
    assert done["status"] == "succeeded", done
    response = ada.post_json("/api/runs", {
        "dataset_id": dataset_id, "family": "tiny-sd", "preset": "style", "start_from": first,
        "params": {"steps": 3, "learning_rate": 5e-4, "sample_every": 0},
    })  # fmt: skip
    assert response.status_code == 201, response.text
    second = int(response.json()["id"])
    status = wait_for(
        live_service, lambda: (s := ada.run_status(second))["status"] in FINISHED and s, 240, "run"
    )
    # A new run at step 0 (its own 3 steps, other settings), on the first run's final weights.
    assert status["status"] == "succeeded", status
    assert status["step"] == 3 and [p[0] for p in status["loss_curve"]] == [1, 2, 3]
    assert any("started from the LoRA weights of step-000004" in line for line in status["log"])
    assert not any("resuming" in line for line in status["log"])


def _run_the_pages_how_to_use(page: str, lora: Path, folder: Path) -> None:
    """The run page's diffusers snippet, as a person copies it, runs (on the CPU here) with
    the downloaded file under the name it gives, and writes the picture it promises."""
    found = re.search(r'<details id="how-to-use">.*?<pre><code>(.*?)</code></pre>', page, re.S)
    assert found, "the run page has no How to use"
    code = html.unescape(found[1])
    (file_name,) = re.findall(r'load_lora_weights\("([^"]+)"\)', code)
    (picture,) = re.findall(r'image\.save\("([^"]+)"\)', code)
    folder.mkdir()
    (folder / file_name).write_bytes(lora.read_bytes())
    script = folder / "how_to_use.py"
    script.write_text(code.replace('.to("cuda")', '.to("cpu")'), encoding="utf-8")
    offline = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, script.name], cwd=folder, env=offline,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (folder / picture).stat().st_size > 0


def test_cancel_stops_within_seconds_and_charges_the_time_used(
    live_service: LiveService, ada: Person
) -> None:
    dataset_id = ada.ready_dataset(live_service, images=2)
    run_id = ada.start_run(dataset_id, steps=5000, rank=4, checkpoint_every=5000)
    wait_for(live_service, lambda: ada.run_status(run_id)["step"] >= 2, 120, "first steps")
    requested = time.monotonic()
    ada.post_form(f"/runs/{run_id}/cancel", {}, page=f"/runs/{run_id}")
    status = wait_for(
        live_service,
        lambda: (s := ada.run_status(run_id))["status"] in FINISHED and s,
        30,
        "cancel",
    )
    stopped_after = time.monotonic() - requested
    assert status["status"] == "cancelled"
    assert stopped_after < 10, f"took {stopped_after:.1f} s to stop"
    assert 2 <= status["step"] < 5000 and status["checkpoints"] == [status["step"]]
    ((key, seconds, charged),) = ledger(live_service, run_id)
    assert charged and seconds > 0 and key == f"run:{run_id}:attempt:1"
    assert reservation(live_service) == (0, 0)


def test_a_killed_worker_resumes_from_its_checkpoint_without_double_metering(
    live_service: LiveService, ada: Person
) -> None:
    dataset_id = ada.ready_dataset(live_service, images=2)
    run_id = ada.start_run(dataset_id, steps=24, rank=4, checkpoint_every=4)
    wait_for(live_service, lambda: ada.run_status(run_id)["checkpoints"], 120, "a checkpoint")
    live_service.kill_worker()
    killed_at = ada.run_status(run_id)
    assert killed_at["status"] == "running"
    time.sleep(3)
    sweep = "from jobs.maintenance import requeue_stale_runs; print(requeue_stale_runs())"
    out = live_service.run_job(sweep, ATTUNE_RUN_HEARTBEAT_TIMEOUT_S="2")
    assert "'resumed': 1" in out
    live_service.start_worker()
    status = wait_for(
        live_service,
        lambda: (s := ada.run_status(run_id))["status"] in FINISHED and s,
        240,
        "resumed run",
    )
    assert status["status"] == "succeeded", status
    resumed = [line for line in status["log"] if "resuming from the checkpoint at step" in line]
    assert resumed and int(resumed[0].rsplit(" ", 1)[-1]) >= 4
    assert live_service.run_job(sweep, ATTUNE_RUN_HEARTBEAT_TIMEOUT_S="2").count("': 0") == 3
    segments = ledger(live_service, run_id)
    assert [(key, charged) for key, _, charged in segments] == [
        (f"run:{run_id}:attempt:1", False),
        (f"run:{run_id}:attempt:2", True),
    ]
    assert reservation(live_service) == (0, 0)


def test_a_file_the_engine_skips_is_named_once_in_the_run_log(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The engine reports each skipped file; the worker does not say it a second time."""
    with running_app(request, "sqlite") as app:  # one database is enough: this is about the log
        _train_one_step_with_a_broken_file(app, tmp_path)


def _train_one_step_with_a_broken_file(app: Flask, tmp_path: Path) -> None:
    from rq import Queue

    from app.accounts.models import User
    from app.datasets.models import DatasetItem
    from app.extensions import get_redis, get_storage
    from app.trainings.models import TrainingRun
    from jobs.training import run
    from tests.app.privacy.support import add_dataset
    from tests.support.training_data import write_image
    from tests.support.web import sign_up

    sign_up(client := app.test_client())
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "ada@example.com"))
        dataset_id = add_dataset(user_id, files=2)  # stored bytes that are no image at all
        good = db.session.scalars(select(DatasetItem).where(DatasetItem.dataset_id == dataset_id))
        image = write_image(tmp_path / "good.png", 64, 64).read_bytes()
        get_storage().put(next(iter(good)).storage_key, image, "image/png")
        training_run = TrainingRun(
            user_id=user_id,
            dataset_id=dataset_id,
            name="once",
            family="tiny-sd",
            config={"steps": 1, "rank": 4, "resolution": 64, "sample_every": 0},
            status="queued",
            queue="gpu-cpu",
            total_steps=1,
        )
        db.session.add(training_run)
        db.session.commit()
        assert run(training_run.id) == "succeeded"
        # The "LoRA is ready" e-mail waits on the CPU queue: the GPU worker sends no mail.
        queued = Queue("cpu", connection=get_redis()).jobs
        mails = [job.args[1] for job in queued if job.func_name == "jobs.mail.send"]
        assert [subject for subject in mails if "is ready" in subject] == [
            "Your LoRA “once” is ready"
        ]
    log = client.get(f"/api/runs/{training_run.id}").get_json()["log"]
    assert len([line for line in log if "skipped " in line]) == 1, log


class _StepEvent:
    """A trainer step event, as training.ProgressEvent.to_dict() gives it."""

    def __init__(self, step: int, loss: float) -> None:
        self.step, self.loss = step, loss

    def to_dict(self) -> dict[str, object]:
        return {"kind": "step", "step": self.step, "total_steps": 700, "loss": self.loss}


def test_the_kept_loss_curve_is_the_one_the_run_page_draws(request: pytest.FixtureRequest) -> None:
    """700 steps, more than a curve keeps: the run row keeps the curve the page drew."""
    from app.extensions import get_redis
    from app.trainings.models import TrainingRun
    from app.trainings.services import live_progress
    from jobs.progress import RunReporter
    from tests.app.privacy.support import add_run, make_user

    with running_app(request, "sqlite") as app, app.app_context():
        run = db.session.get(TrainingRun, add_run(make_user(), status="running"))
        reporter = RunReporter(run, get_redis())
        for step in range(1, 701):
            reporter.on_progress(_StepEvent(step, 1.0 / step))
        kept, drawn = reporter.loss_curve(), live_progress(run)["loss_curve"]
    assert kept == drawn
    assert len(kept) <= 501 and kept[0][0] == 1 and kept[-1][0] == 700


def test_engine_errors_are_classified_by_their_type_for_runs_and_renders() -> None:
    from jobs.outcomes import PLATFORM_MESSAGE, engine_outcome
    from training.errors import ConfigError, ExportError, TrainingOutOfMemory
    from training.video import ClipTooLongError

    too_long = engine_outcome(ClipTooLongError("clip.mp4 is 700 s long"))
    assert (too_long.error, too_long.platform_fault) == ("clip.mp4 is 700 s long", False)
    assert not engine_outcome(ConfigError("rank", "must be 1-256")).platform_fault
    assert engine_outcome(ExportError("LoRA did not load back")).platform_fault
    memory = engine_outcome(TrainingOutOfMemory("Out of memory at 1024 px."))
    assert memory.platform_fault and memory.error.endswith("You are not charged for this run.")
    other = engine_outcome(KeyError("boom"))
    assert (other.error, other.platform_fault) == (PLATFORM_MESSAGE, True)


def test_every_worker_log_line_names_its_rq_job(request: pytest.FixtureRequest) -> None:
    import logging

    from rq import Queue, SimpleWorker

    from app.extensions import get_redis
    from app.queues import enqueue_task
    from jobs.context import JobIdFilter

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.INFO)
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    kept = Keep()
    kept.addFilter(JobIdFilter())
    root = logging.getLogger()
    job_log = logging.getLogger("jobs.billing")
    saved = job_log.disabled, job_log.level, job_log.propagate, logging.root.manager.disable
    with running_app(request, "sqlite") as app, app.app_context():
        root.addHandler(kept)  # after the migrations, which reconfigure logging
        level, root.level = root.level, logging.INFO
        # Whatever earlier tests in this process did to the job's logger (a dictConfig
        # disables every logger that exists), this test reads what the job itself writes.
        job_log.disabled, job_log.level, job_log.propagate = False, logging.INFO, True
        logging.disable(logging.NOTSET)
        try:
            job = enqueue_task("jobs.billing.report_overage", 404, queue="cpu", timeout_s=30)
            logging.getLogger("outside").info("not in a job")
            worker = SimpleWorker([Queue("cpu", connection=get_redis())], connection=get_redis())
            worker.work(burst=True, with_scheduler=False)
        finally:
            root.removeHandler(kept)
            root.level = level
            job_log.disabled, job_log.level, job_log.propagate = saved[:3]
            logging.disable(saved[3])
    in_job = [r for r in kept.records if r.name == "jobs.billing"]
    assert in_job and all(r.job_id == job.id for r in in_job)  # type: ignore[attr-defined]
    outside = [r for r in kept.records if r.name == "outside"]
    assert [r.job_id for r in outside] == ["-"]  # type: ignore[attr-defined]
