"""Run rules: validate, start, cancel, report progress, hand out downloads."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from app.accounts.models import User
from app.datasets.models import Dataset
from app.datasets.services import item_counts
from app.db_types import utcnow
from app.errors import NotFound
from app.extensions import db, get_redis, get_settings, get_storage
from app.queues import enqueue_task, get_queue, queue_for_family
from app.trainings.families import FAMILIES, estimate_gpu_seconds
from app.trainings.models import TrainingRun

PROGRESS_KEY = "attune:run:{run_id}:progress"
DOWNLOADABLE = ("lora", "comfyui")


class RunError(Exception):
    """A run rule was broken; the message is for the person."""


def list_runs(user: User) -> list[TrainingRun]:
    """The person's runs, newest first."""
    query = select(TrainingRun).where(TrainingRun.user_id == user.id)
    return list(db.session.scalars(query.order_by(TrainingRun.id.desc())))


def get_run(user: User, run_id: int) -> TrainingRun:
    """The person's run, or NotFound."""
    run = db.session.scalar(
        select(TrainingRun).where(TrainingRun.id == run_id, TrainingRun.user_id == user.id)
    )
    if run is None:
        raise NotFound(f"run {run_id}")
    return run


def allowed_families() -> list[str]:
    """Families this deployment offers."""
    return [name for name in get_settings().enabled_families if name in FAMILIES]


def start_run(user: User, dataset: Dataset, family: str, params: dict[str, Any]) -> TrainingRun:
    """Validate, record the run as queued and enqueue it on its family's GPU queue."""
    if family not in allowed_families():
        raise RunError("That base model is not available.")
    if item_counts(dataset).get("ready", 0) == 0:
        raise RunError("The dataset has no ready images yet. Upload some and wait for them.")
    info = FAMILIES[family]
    resolution = params.get("resolution") or info.default_resolution
    if not info.min_resolution <= resolution <= info.max_resolution:
        raise RunError(
            f"Resolution must be between {info.min_resolution} and {info.max_resolution} "
            f"for {info.label}."
        )
    steps = int(params["steps"])
    config = {
        "family": family,
        "steps": steps,
        "rank": int(params["rank"]),
        "learning_rate": float(params["learning_rate"]),
        "resolution": resolution,
        "trigger_word": dataset.trigger_word or "",
    }
    run = TrainingRun(
        user_id=user.id,
        dataset_id=dataset.id,
        name=(params.get("name") or f"{dataset.name} · {info.label}")[:120],
        family=family,
        config=config,
        total_steps=steps,
        queue=queue_for_family(family),
        reserved_gpu_seconds=estimate_gpu_seconds(family, steps),
    )
    db.session.add(run)
    db.session.commit()
    job = enqueue_task(
        "jobs.training.run",
        run.id,
        queue=run.queue,
        timeout_s=get_settings().training_job_timeout_s,
        job_id=f"run-{run.id}-1",
    )
    run.job_id = job.id
    db.session.commit()
    return run


def cancel_run(run: TrainingRun) -> None:
    """Stop a run: a queued one at once, a running one at its next step."""
    if run.is_finished:
        raise RunError("This run has already finished.")
    run.cancel_requested = True
    if run.status == "queued":
        if run.job_id:
            get_queue(run.queue).remove(run.job_id)
        run.status = "cancelled"
        run.finished_at = utcnow()
    db.session.commit()


def live_progress(run: TrainingRun) -> dict[str, Any]:
    """The latest progress the worker published, falling back to the database row."""
    raw = get_redis().get(PROGRESS_KEY.format(run_id=run.id))
    live = json.loads(raw) if raw else {}
    return {
        "id": run.id,
        "status": run.status,
        "step": max(run.step, live.get("step", 0)),
        "total_steps": run.total_steps,
        "loss": live.get("loss", run.loss),
        "eta_seconds": live.get("eta_seconds"),
        "error": run.error,
        "downloads": [kind for kind in DOWNLOADABLE if kind in (run.artifacts or {})],
    }


def download_url(run: TrainingRun, kind: str) -> str:
    """A short-lived attachment URL for one of the run's files."""
    key = (run.artifacts or {}).get(kind)
    if kind not in DOWNLOADABLE or not key:
        raise NotFound(f"{kind} of run {run.id}")
    filename = key.rsplit("/", 1)[-1]
    return get_storage().presign_download(key, get_settings().download_url_expiry_s, filename)
