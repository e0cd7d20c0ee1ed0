"""The training task: scratch copy, train, upload, meter, settle. Safe to run twice."""

from __future__ import annotations

import shutil
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from app.billing.models import GpuUsage
from app.datasets.models import DatasetItem
from app.db_types import utcnow
from app.extensions import db, get_redis, get_settings, get_storage
from app.trainings.models import TrainingRun
from jobs.context import app_context, job_logger
from jobs.models import resolve_base_model
from jobs.progress import RunReporter


def run(run_id: int) -> str:
    """Train run `run_id` on this worker; returns the run's final status."""
    with app_context():
        training_run = db.session.get(TrainingRun, run_id)
        if training_run is None or training_run.is_finished:
            return "skipped"
        training_run.attempts += 1
        training_run.status, training_run.started_at = "running", utcnow()
        db.session.commit()
        log = job_logger(__name__, f"run {run_id} attempt {training_run.attempts}")
        scratch = get_settings().scratch_dir / f"run-{run_id}"
        started, wall_start = utcnow(), time.monotonic()
        try:
            status = _train_and_upload(training_run, scratch, log)
        except Exception as exc:
            db.session.rollback()
            log.exception("failed")
            _finish(training_run, "failed", error=_explain(exc))
            status = "failed"
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        _meter(training_run, started, time.monotonic() - wall_start)
        return status


def _train_and_upload(training_run: TrainingRun, scratch: Path, log: object) -> str:
    from training import TrainingConfig, train

    settings = get_settings()
    data_dir, out_dir = scratch / "data", scratch / "out"
    _copy_dataset(training_run, data_dir)
    config = TrainingConfig.from_dict(
        {
            **training_run.config,
            "base_model": resolve_base_model(settings, training_run.family),
            "output_name": f"attune-run-{training_run.id}",
        }
    )
    reporter = RunReporter(training_run, get_redis())
    result = train(config, data_dir, out_dir, reporter.on_progress, reporter.should_stop)
    training_run.artifacts = _upload_outputs(training_run, result)
    training_run.step, training_run.loss = result.steps_done, result.final_loss
    status = "cancelled" if result.stopped else "succeeded"
    _finish(training_run, status)
    return status


def _copy_dataset(training_run: TrainingRun, data_dir: Path) -> None:
    """Download the ready items, each as <id><ext> with its caption beside it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    storage = get_storage()
    items = db.session.query(DatasetItem).filter_by(
        dataset_id=training_run.dataset_id, status="ready"
    )
    for item in items:
        stem = data_dir / f"item-{item.id}"
        suffix = Path(item.storage_key).suffix
        storage.download_file(item.storage_key, stem.with_suffix(suffix))
        if item.caption:
            stem.with_suffix(".txt").write_text(item.caption, encoding="utf-8")


def _upload_outputs(training_run: TrainingRun, result: object) -> dict[str, object]:
    """Put the LoRA files and samples under the run's prefix and return their keys."""
    storage, prefix = get_storage(), training_run.storage_prefix()
    artifacts: dict[str, object] = {}
    for kind, path in (("lora", result.lora_path), ("comfyui", result.comfyui_path)):  # type: ignore[attr-defined]
        if path:
            key = f"{prefix}lora/{Path(path).name}"
            storage.upload_file(key, Path(path), "application/octet-stream")
            artifacts[kind] = key
    samples = []
    for path in result.samples:  # type: ignore[attr-defined]
        key = f"{prefix}samples/{Path(path).name}"
        storage.upload_file(key, Path(path), "image/png")
        samples.append(key)
    artifacts["samples"] = samples
    return artifacts


def _finish(training_run: TrainingRun, status: str, error: str | None = None) -> None:
    training_run.status, training_run.error = status, error
    training_run.finished_at = utcnow()
    db.session.commit()


def _meter(training_run: TrainingRun, started: datetime, seconds: float) -> None:
    """Write this attempt's GPU time once; a retried write with the same key is ignored."""
    usage = GpuUsage(
        user_id=training_run.user_id,
        run_id=training_run.id,
        segment_key=f"run:{training_run.id}:attempt:{training_run.attempts}",
        gpu_seconds=round(seconds, 3),
        charged=not training_run.platform_fault,
        started_at=started,
        ended_at=utcnow(),
    )
    db.session.add(usage)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return
    training_run.used_gpu_seconds = seconds
    db.session.commit()


def _explain(exc: Exception) -> str:
    """A message for the person: the engine's own words for its errors, a generic one else."""
    if type(exc).__module__.startswith("training"):
        return str(exc)
    return "The run failed because of an internal error. You are not charged for it."
