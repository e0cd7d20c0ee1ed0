"""Sweepers: clean up what interrupted uploads leave behind, and queue again the work whose
job Redis lost (the database is the truth). Batched and re-runnable."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from app import object_keys
from app.datasets.models import DatasetItem
from app.datasets.services import delete_item_objects
from app.db_types import utcnow
from app.extensions import db, get_redis, get_settings, get_storage
from jobs.context import app_context, job_logger

STALE_UPLOAD_AGE = timedelta(hours=24)
STUCK_INGEST_AGE = timedelta(minutes=30)
GIVE_UP_INGEST_AGE = timedelta(days=3)
LOST_JOB_AGE = timedelta(minutes=10)
GIVE_UP_GENERATION_AGE = timedelta(hours=1)
BATCH = 500


def abort_stale_uploads() -> int:
    """Abort uploads started over a day ago and never completed; drop their items."""
    with app_context():
        log = job_logger(__name__, "abort_stale_uploads")
        storage, cutoff, removed = get_storage(), utcnow() - STALE_UPLOAD_AGE, 0
        while True:
            items = db.session.scalars(
                select(DatasetItem)
                .where(DatasetItem.status == "uploading", DatasetItem.created_at < cutoff)
                .limit(BATCH)
            ).all()
            if not items:
                break
            for item in items:
                delete_item_objects(item)
                db.session.delete(item)
            db.session.commit()
            removed += len(items)
        for upload in storage.list_multipart_uploads(object_keys.USERS):
            if upload.initiated < cutoff:
                storage.abort_multipart(upload.key, upload.upload_id)
        log.info("removed %d stale uploads", removed)
        return removed


def requeue_stuck_ingests(now: datetime | None = None) -> dict[str, int]:
    """Queue ingest again for uploaded items whose job Redis lost or that failed (storage
    down, worker killed); ingest is safe to run twice. Items still stuck after three days are
    rejected with a reason, which frees their storage allowance."""
    from app.datasets.uploads import ingest_job_id, queue_ingest
    from jobs.datasets import reject_item

    with app_context():
        now, counts = now or utcnow(), {"requeued": 0, "rejected": 0}
        cutoff = now - STUCK_INGEST_AGE
        stuck = db.session.scalars(
            select(DatasetItem)
            .where(DatasetItem.status == "uploaded", DatasetItem.created_at < cutoff)
            .order_by(DatasetItem.id)
            .limit(BATCH)
        ).all()
        for item in stuck:
            if job_alive(ingest_job_id(item.id)):
                continue
            if item.created_at < now - GIVE_UP_INGEST_AGE:
                reject_item(item, "We could not process this file. Please upload it again.")
                counts["rejected"] += 1
            else:
                queue_ingest(item)
                counts["requeued"] += 1
        job_logger(__name__, "requeue_stuck_ingests").info("%s", counts)
        return counts


def requeue_lost_work(now: datetime | None = None) -> dict[str, int]:
    """Queue again the exports and try-it renders whose job Redis lost (down when the request
    was made, restarted without its data) or whose worker died; both are safe to run twice.
    A render still unfinished after an hour fails with a reason and costs nothing. Exports
    that never finish are given up by the retention pass after a day."""
    from app.privacy.exports import export_job_id, queue_export_build
    from app.privacy.models import DataExport
    from app.trainings.generations import generation_job_id, queue_generation
    from app.trainings.models import Generation, TrainingRun

    with app_context():
        now, counts = now or utcnow(), {"exports": 0, "generations": 0, "generations_failed": 0}
        cutoff = now - LOST_JOB_AGE
        exports = db.session.scalars(
            select(DataExport)
            .where(DataExport.status.in_(("queued", "building")), DataExport.created_at < cutoff)
            .order_by(DataExport.id)
            .limit(BATCH)
        ).all()
        for export in exports:
            if not job_alive(export_job_id(export.id)):
                queue_export_build(export)
                counts["exports"] += 1
        generations = db.session.execute(
            select(Generation, TrainingRun.queue)
            .join(TrainingRun, TrainingRun.id == Generation.run_id)
            .where(Generation.status.in_(("queued", "running")), Generation.created_at < cutoff)
            .order_by(Generation.id)
            .limit(BATCH)
        ).all()
        for generation, queue in generations:
            if job_alive(generation_job_id(generation.id)):
                continue
            if generation.created_at < now - GIVE_UP_GENERATION_AGE:
                generation.status = "failed"
                generation.error = "Rendering was interrupted on our side; you are not charged."
                db.session.commit()
                counts["generations_failed"] += 1
            else:
                queue_generation(generation, queue)
                counts["generations"] += 1
        job_logger(__name__, "requeue_lost_work").info("%s", counts)
        return counts


def requeue_stale_runs(now: datetime | None = None) -> dict[str, int]:
    """Find runs whose worker died or whose job Redis lost, and resume or fail them.

    A running run whose heartbeat is older than the timeout lost its worker: its segment is
    recorded uncharged (the platform's fault), then it is queued again to resume from its
    last checkpoint, up to the attempt limit. A queued run whose job is gone from Redis is
    queued again. Safe to run twice and concurrently with workers.
    """
    from app.trainings.models import TrainingRun
    from app.trainings.services import requeue_run
    from jobs.training import Outcome, finish, meter_segment

    with app_context():
        settings, now = get_settings(), now or utcnow()
        cutoff = now - timedelta(seconds=settings.run_heartbeat_timeout_s)
        counts = {"resumed": 0, "failed": 0, "requeued": 0}
        stale = db.session.scalars(
            select(TrainingRun).where(
                TrainingRun.status == "running", TrainingRun.heartbeat_at < cutoff
            )
        ).all()
        for run in stale:
            lost = (run.heartbeat_at - run.started_at).total_seconds() if run.started_at else 0.0
            meter_segment(run, run.started_at or now, max(lost, 0.0), charged=False)
            if run.attempts >= settings.run_max_attempts:
                message = (
                    f"The run's worker was lost {run.attempts} times, so we stopped retrying. "
                    "You are not charged for the lost time."
                )
                finish(run, Outcome("failed", message, platform_fault=True))
                counts["failed"] += 1
            else:
                requeue_run(run)
                counts["resumed"] += 1
        for run in db.session.scalars(select(TrainingRun).where(TrainingRun.status == "queued")):
            if run.job_id and not job_exists(run.job_id):
                requeue_run(run)
                counts["requeued"] += 1
        job_logger(__name__, "requeue_stale_runs").info("%s", counts)
        return counts


def forget_expired_idempotency_keys(now: datetime | None = None) -> int:
    """Delete the API's Idempotency-Keys older than 24 hours (a retry after that is a new run)."""
    from app.api_v1.idempotency import forget_expired_keys

    with app_context():
        removed = forget_expired_keys(now)
        job_logger(__name__, "forget_expired_idempotency_keys").info("removed %d", removed)
        return removed


def job_exists(job_id: str) -> bool:
    """True while Redis still knows the RQ job."""
    from rq.job import Job

    return bool(Job.exists(job_id, connection=get_redis()))


def job_alive(job_id: str) -> bool:
    """True while the RQ job is waiting or running (not failed, finished or forgotten)."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    alive = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED)
    try:
        return Job.fetch(job_id, connection=get_redis()).get_status() in alive
    except NoSuchJobError:
        return False
