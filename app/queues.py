"""RQ queue handles. Tasks are enqueued by dotted name, so app never imports jobs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rq import Queue, Retry
from rq.job import Job, JobStatus

from app.extensions import get_redis, get_settings

CPU_QUEUE = "cpu"
# Account erasures and the deletions people ask for: a worker of its own, so no long
# training, ingest or export job can keep them waiting (Procfile: worker-privacy).
PRIVACY_QUEUE = "privacy"
RESULT_TTL_S = 24 * 3600
FAILURE_TTL_S = 7 * 24 * 3600
JOB_BATCH = 500


def get_queue(name: str) -> Queue:
    """The RQ queue called `name` on the app's Redis."""
    return Queue(name, connection=get_redis())


def queue_for_family(family: str) -> str:
    """The queue of the GPU class that trains `family`."""
    return get_settings().family_queues[family]


def enqueue_task(
    task: str,
    *args: Any,
    queue: str,
    timeout_s: int,
    job_id: str | None = None,
    description: str | None = None,
    retry: Retry | None = None,
    result_ttl_s: int = RESULT_TTL_S,
    at: datetime | None = None,
) -> Job:
    """Put `task` (a dotted name such as "jobs.training.run") on `queue` with explicit TTLs;
    with `at`, the workers' scheduler queues it at that time."""
    rq_queue = get_queue(queue)
    job = rq_queue.create_job(
        task,
        args=args,
        timeout=timeout_s,
        result_ttl=result_ttl_s,
        failure_ttl=FAILURE_TTL_S,
        job_id=job_id,
        description=description or f"{task}{args}",
        retry=retry,
        status=JobStatus.SCHEDULED if at is not None else JobStatus.QUEUED,
    )
    return rq_queue.enqueue_job(job) if at is None else rq_queue.schedule_job(job, at)


def started_jobs(job_ids: Iterable[str]) -> list[str]:
    """The jobs among `job_ids` that a worker is running now (one Redis round trip)."""
    wanted = list(dict.fromkeys(job_ids))
    pipe = get_redis().pipeline(transaction=False)
    for job_id in wanted:
        pipe.hget(Job.key_for(job_id), "status")
    started = JobStatus.STARTED.value.encode()
    statuses = pipe.execute()
    return [job_id for job_id, status in zip(wanted, statuses, strict=True) if status == started]


def delete_jobs(job_ids: Iterable[str]) -> int:
    """Forget the jobs: their records, results and places in queues and registries."""
    redis, wanted, deleted = get_redis(), list(dict.fromkeys(job_ids)), 0
    for start in range(0, len(wanted), JOB_BATCH):
        jobs = Job.fetch_many(wanted[start : start + JOB_BATCH], connection=redis)
        with redis.pipeline() as pipe:
            for job in filter(None, jobs):
                job.delete(pipeline=pipe)
                deleted += 1
            pipe.execute()
    return deleted
