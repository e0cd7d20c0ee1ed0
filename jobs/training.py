"""The training task: scratch copy, train, upload, meter, settle, notify. Safe to run twice.

Each attempt is one metered segment with the key run:<id>:attempt:<n>; a retried write of the
same segment is ignored, and a segment lost with its worker is recorded uncharged by the
sweeper (jobs.maintenance.requeue_stale_runs), which also queues the next attempt.
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime
from pathlib import Path

from redis.exceptions import RedisError

from app.accounts.mail import queue_email
from app.accounts.models import User
from app.billing.overage import record_gpu_usage
from app.db_types import utcnow
from app.extensions import db, get_redis, get_settings
from app.trainings.artifacts import RunArtifacts
from app.trainings.events import emit_run_event_safely
from app.trainings.models import TrainingRun
from app.trainings.quota import release_reservation
from jobs import run_files
from jobs.base_models import resolve_base_model
from jobs.context import app_context, job_logger
from jobs.outcomes import Outcome, engine_outcome
from jobs.progress import Heartbeat, RunReporter


def run(run_id: int) -> str:
    """Train run `run_id` on this worker; returns the run's status afterwards."""
    with app_context():
        training_run = db.session.get(TrainingRun, run_id)
        if training_run is None or training_run.is_finished or training_run.status == "running":
            return "skipped"  # a duplicate delivery, or another worker holds it
        if training_run.cancel_requested:
            finish(training_run, Outcome("cancelled"))
            return "cancelled"
        training_run.attempts += 1
        training_run.status, training_run.started_at = "running", utcnow()
        training_run.heartbeat_at = training_run.started_at
        db.session.commit()
        log = job_logger(__name__, f"run {run_id} attempt {training_run.attempts}")
        reporter = RunReporter(training_run, get_redis())
        reporter.log(f"attempt {training_run.attempts} started")
        emit_run_event_safely(training_run, "start")
        settings = get_settings()
        scratch = settings.scratch_dir / f"run-{run_id}"
        started, clock = training_run.started_at, time.monotonic()
        with Heartbeat(db.engine, run_id, settings.run_heartbeat_interval_s):
            try:
                outcome = _attempt(training_run, reporter, scratch)
            except Exception as exc:
                db.session.rollback()
                log.exception("failed")
                outcome = engine_outcome(exc)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        seconds = time.monotonic() - clock
        meter_segment(training_run, started, seconds, not outcome.platform_fault)
        if outcome.status == "succeeded":
            record_step_speed(training_run, outcome, seconds)
        if outcome.error:
            reporter.log(f"failed: {outcome.error}")
        RunArtifacts(training_run).update(loss_curve=reporter.loss_curve())
        finish(training_run, outcome)
        log.info("finished: %s", outcome.status)
        return outcome.status


def _attempt(training_run: TrainingRun, reporter: RunReporter, scratch: Path) -> Outcome:
    from training import TrainingConfig, train

    data_dir, out_dir = scratch / "data", scratch / "out"
    count = run_files.copy_dataset(training_run, data_dir)
    reporter.uploaded_names = run_files.uploaded_names(training_run)
    reporter.log(f"copied {count} dataset files to the worker")
    resumed = run_files.restore_latest_checkpoint(training_run, out_dir)  # the engine says so
    start_from = None
    if resumed is None:  # a new run may start from another run's LoRA; a resume goes on
        start_from = run_files.download_start_weights(training_run, scratch / "start")
    config = TrainingConfig.from_dict(
        {
            **training_run.config,
            "base_model": resolve_base_model(training_run.family),
            "output_name": f"attune-run-{training_run.id}",
        }
    )
    reporter.keep_checkpoints = config.keep_checkpoints
    result = train(
        config, data_dir, out_dir, reporter.on_progress, reporter.should_stop, start_from
    )
    if not reporter.owner_leaving:
        run_files.upload_outputs(training_run, result)
    training_run.step, training_run.loss = result.steps_done, result.final_loss
    return Outcome(
        "cancelled" if result.stopped else "succeeded",
        steps_trained=result.steps_done - (result.resumed_from or 0),
        seconds_per_step=result.seconds_per_step,
    )


def meter_segment(run: TrainingRun, started: datetime, seconds: float, charged: bool) -> bool:
    """Record one attempt's GPU time once; returns False when it was already recorded."""
    segment = f"run:{run.id}:attempt:{run.attempts}"
    recorded = record_gpu_usage(run.user_id, run.id, segment, "training", seconds, charged, started)
    if not recorded:
        return False
    if charged:
        run.used_gpu_seconds = (run.used_gpu_seconds or 0.0) + seconds
        db.session.commit()
    return True


def record_step_speed(run: TrainingRun, outcome: Outcome, seconds: float) -> None:
    """Keep what the attempt measured, for the estimates of later runs (app.trainings.families):
    seconds per step, and the rest of its GPU time as start-up (load, cache, export, upload)."""
    if outcome.seconds_per_step is None or outcome.steps_trained < 1:
        return
    run.seconds_per_step = round(outcome.seconds_per_step, 5)
    run.startup_seconds = round(
        max(0.0, seconds - outcome.seconds_per_step * outcome.steps_trained), 2
    )


def finish(run: TrainingRun, outcome: Outcome) -> None:
    """Record the end state, give the reservation back and tell the owner."""
    run.status, run.error, run.platform_fault = (
        outcome.status,
        outcome.error,
        outcome.platform_fault,
    )
    run.finished_at = utcnow()
    # One transaction: nobody may see the run ended while its reservation is still held.
    release_reservation(run)
    emit_run_event_safely(run, "completed")
    notify_owner(run)


def notify_owner(run: TrainingRun) -> None:
    """Queue the owner's e-mail that the run ended (a CPU worker sends it, so the GPU worker
    never waits on a mail server); a queueing failure never fails the run."""
    user = db.session.get(User, run.user_id)
    if user is None or run.status == "cancelled":
        return
    link = f"{get_settings().base_url}/runs/{run.id}"
    if run.status == "succeeded":
        subject = f"Your LoRA “{run.name}” is ready"
        body = f"Training finished after {run.step} steps. Download it here:\n{link}\n"
    else:
        subject = f"Your training run “{run.name}” failed"
        body = f"{run.error}\n\nDetails: {link}\n"
    try:
        queue_email(user.email, subject, body, account_id=user.id)
    except RedisError:
        job_logger(__name__, f"run {run.id}").warning("could not queue the e-mail", exc_info=True)
