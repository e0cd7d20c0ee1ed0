"""RQ queue handles. Tasks are enqueued by dotted name, so app never imports jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rq import Queue, Retry
from rq.job import Job, JobStatus

from app.extensions import get_redis, get_settings

CPU_QUEUE = "cpu"
RESULT_TTL_S = 24 * 3600
FAILURE_TTL_S = 7 * 24 * 3600


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
    at: datetime | None = None,
) -> Job:
    """Put `task` (a dotted name such as "jobs.training.run") on `queue` with explicit TTLs;
    with `at`, the workers' scheduler queues it at that time."""
    rq_queue = get_queue(queue)
    job = rq_queue.create_job(
        task,
        args=args,
        timeout=timeout_s,
        result_ttl=RESULT_TTL_S,
        failure_ttl=FAILURE_TTL_S,
        job_id=job_id,
        description=description or f"{task}{args}",
        retry=retry,
        status=JobStatus.SCHEDULED if at is not None else JobStatus.QUEUED,
    )
    return rq_queue.enqueue_job(job) if at is None else rq_queue.schedule_job(job, at)
