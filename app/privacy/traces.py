"""What Redis holds of a person, found from their rows so an erasure can forget all of it.

Per run: live progress, loss curve and log tail, and its jobs; per dataset: bucket previews;
per item, render, export and webhook delivery: its jobs; per account: queued e-mails and the
rate-limit counters keyed by the account or its e-mail address. Ids are never reused
(AUTOINCREMENT on SQLite, sequences on PostgreSQL), so these keys were only ever theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from limits.storage import RedisStorage
from redis import Redis
from rq.job import Job
from sqlalchemy import select

from app.accounts.mail import mail_job_prefix
from app.accounts.models import User
from app.datasets.models import Dataset, DatasetItem
from app.datasets.previews import preview_job_prefix, previews_prefix
from app.datasets.uploads import ingest_job_id
from app.extensions import db, get_redis, limiter
from app.privacy.exports import export_job_id
from app.privacy.models import DataExport
from app.queues import delete_jobs
from app.trainings.generations import generation_job_id
from app.trainings.models import Generation, TrainingRun
from app.trainings.services import run_job_id
from app.trainings.telemetry import live_keys
from app.webhooks.events import attempt_job_id
from app.webhooks.models import WebhookDelivery

# How the per-account limits' keys begin (key functions in app/accounts/sign_in_routes.py,
# app/datasets/api.py and app/api_v1/auth.py; the account one is the session id "<user id>:
# <session version>", or "<user id>:api-..." for the API's).
ACCOUNT_LIMIT_KEYS = ("account:{user_id}:", "sign-in:{email}/", "reset:{email}/")


@dataclass
class PersonTraces:
    """The Redis keys, key prefixes and RQ job ids that belong to one person."""

    keys: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)


def traces_of(user: User) -> PersonTraces:
    """Everything Redis may hold for the person's rows as they are now."""
    traces = PersonTraces(prefixes=[Job.key_for(mail_job_prefix(user.id))])
    for run in db.session.scalars(select(TrainingRun).where(TrainingRun.user_id == user.id)):
        traces.keys += live_keys(run.id)
        # The next attempt's id too: a sweeper may have queued it a moment ago.
        traces.job_ids += [run_job_id(run.id, n) for n in range(1, run.attempts + 2)]
    deliveries = select(WebhookDelivery).where(WebhookDelivery.user_id == user.id)
    for delivery in db.session.scalars(deliveries):
        traces.job_ids += [attempt_job_id(delivery.id, n) for n in range(1, delivery.attempts + 2)]
    for model, job_id in ((Generation, generation_job_id), (DataExport, export_job_id)):
        query = select(model.id).where(model.user_id == user.id)  # type: ignore[attr-defined]
        traces.job_ids += [job_id(row_id) for row_id in db.session.scalars(query)]
    datasets = list(db.session.scalars(select(Dataset.id).where(Dataset.user_id == user.id)))
    items = select(DatasetItem.id).where(DatasetItem.dataset_id.in_(datasets))
    traces.job_ids += [ingest_job_id(item_id) for item_id in db.session.scalars(items)]
    for dataset_id in datasets:
        traces.prefixes += [
            previews_prefix(dataset_id),
            Job.key_for(preview_job_prefix(dataset_id)),
        ]
    return traces


def forget_traces(user: User, traces: PersonTraces) -> int:
    """Delete the person's keys, job records, queued e-mails and rate-limit counters."""
    redis = get_redis()
    removed = redis.delete(*traces.keys) if traces.keys else 0
    job_key = Job.key_for("")
    for prefix in traces.prefixes:
        if prefix.startswith(job_key):  # a job record: delete it with its queue and registries
            found = _keys_starting_with(redis, prefix)
            removed += delete_jobs(key.removeprefix(job_key) for key in found)
        else:
            removed += _delete_keys(redis, _keys_starting_with(redis, prefix))
    return removed + delete_jobs(traces.job_ids) + _forget_rate_limits(user)


def _forget_rate_limits(user: User) -> int:
    """The limiter's counters keyed by the account or its address (it may use its own Redis)."""
    storage = limiter.storage
    if not isinstance(storage, RedisStorage):
        return 0  # an in-memory limiter forgets with its process
    removed = 0
    for template in ACCOUNT_LIMIT_KEYS:
        key = template.format(user_id=user.id, email=user.email)
        prefix = storage.prefixed_key(f"LIMITER/{key}")
        removed += _delete_keys(storage.storage, _keys_starting_with(storage.storage, prefix))
    return removed


def _keys_starting_with(redis: Redis, prefix: str) -> list[str]:
    """Every key that begins with `prefix` (SCAN, so Redis is never blocked)."""
    pattern = "".join("\\" + char if char in "*?[]\\" else char for char in prefix) + "*"
    return [key.decode() for key in redis.scan_iter(match=pattern, count=1000)]


def _delete_keys(redis: Redis, keys: list[str]) -> int:
    return int(redis.delete(*keys)) if keys else 0
