"""The periodic jobs, run by RQ's cron scheduler: `python -m jobs.scheduler`."""

from __future__ import annotations

import logging

from rq.cron import CronScheduler

from app.config import load_settings
from jobs import billing, maintenance, retention, webhooks
from jobs.worker import wait_for_redis

HOUR = 3600


def build_scheduler(connection: object) -> CronScheduler:
    """Every periodic job with its queue, interval and timeout."""
    scheduler = CronScheduler(connection=connection)  # type: ignore[arg-type]
    scheduler.register(
        maintenance.abort_stale_uploads, "cpu", interval=HOUR, job_timeout=900, result_ttl=HOUR
    )
    scheduler.register(
        maintenance.requeue_stale_runs, "cpu", interval=60, job_timeout=300, result_ttl=HOUR
    )
    scheduler.register(
        maintenance.requeue_stuck_ingests, "cpu", interval=600, job_timeout=300, result_ttl=HOUR
    )
    scheduler.register(
        maintenance.requeue_lost_work, "cpu", interval=600, job_timeout=300, result_ttl=HOUR
    )
    scheduler.register(
        maintenance.forget_expired_idempotency_keys, "cpu", interval=HOUR, job_timeout=300,
        result_ttl=HOUR,
    )  # fmt: skip
    scheduler.register(
        billing.report_pending_overage, "cpu", interval=600, job_timeout=900, result_ttl=HOUR
    )
    scheduler.register(
        retention.apply_retention, "cpu", interval=HOUR, job_timeout=3 * HOUR, result_ttl=HOUR
    )
    scheduler.register(
        webhooks.requeue_lost_deliveries, "cpu", interval=300, job_timeout=300, result_ttl=HOUR
    )
    scheduler.register(
        webhooks.purge_webhook_log, "cpu", interval=HOUR, job_timeout=900, result_ttl=HOUR
    )
    return scheduler


def main() -> None:
    """Start the cron scheduler until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    build_scheduler(wait_for_redis(load_settings().redis_url)).start()


if __name__ == "__main__":
    main()
