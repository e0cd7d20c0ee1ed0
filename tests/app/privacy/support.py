"""Helpers for the account-lifecycle and privacy tests: jobs run in-process, data factories."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from app.datasets.models import Dataset
from app.extensions import db, get_redis, get_storage
from app.privacy.models import DeletionReceipt
from app.trainings.models import TrainingRun

LINK = re.compile(r"https?://\S+")


@pytest.fixture
def inline_jobs(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """Jobs (jobs.*) run inside this test's app, as a worker configured like it would."""
    jobs_use_app(monkeypatch, app)
    yield app


def jobs_use_app(monkeypatch: pytest.MonkeyPatch, app: Flask) -> None:
    """Make jobs.context hand `app` to every job run in this process."""
    import jobs.context

    monkeypatch.setattr(jobs.context, "_app", app)
    monkeypatch.setattr(jobs.context, "_app_pid", os.getpid())


def run_jobs(app: Flask, queue: str = "cpu") -> int:
    """Work `queue` until it is empty, in this process; fails the test if a job failed."""
    with app.app_context():
        connection = get_redis()
    rq_queue = Queue(queue, connection=connection)
    count = len(rq_queue)
    SimpleWorker([rq_queue], connection=connection).work(burst=True, with_scheduler=False)
    failed = FailedJobRegistry(queue=rq_queue).get_job_ids()
    if failed:
        result = Job.fetch(failed[0], connection=connection).latest_result()
        raise AssertionError(f"job failed: {result.exc_string if result else failed[0]}")
    return count


def links(message: Message) -> list[str]:
    """Every URL in a plain-text e-mail."""
    return LINK.findall(message.get_payload(decode=True).decode())


def path_of(url: str) -> str:
    """The path (and query) of one of the app's absolute URLs."""
    return re.sub(r"^https?://[^/]+", "", url)


@functools.cache
def good_password_hash() -> str:
    """The argon2id hash of tests.support.web.GOOD_PASSWORD, computed once per test run."""
    from app.accounts.passwords import hash_password
    from tests.support.web import GOOD_PASSWORD

    return hash_password(GOOD_PASSWORD)


def signed_in_as(client: FlaskClient, user_id: int) -> FlaskClient:
    """Put a session for the user in the client's cookie, as signing in would (no hashing)."""
    from app.accounts.models import User

    with client.application.app_context():
        session_id = db.session.get(User, user_id).get_id()
    with client.session_transaction() as session:
        session["_user_id"], session["_fresh"] = session_id, True
    return client


def make_user(
    email: str = "ada@example.com", created_at: datetime | None = None, **values: Any
) -> int:
    """A user row without hashing a password (fast); returns its id. Needs an app context."""
    from app.accounts.models import User
    from app.db_types import utcnow

    now = utcnow()
    user = User(
        email=email,
        name=values.pop("name", "Ada Lovelace"),
        adult_confirmed_at=created_at or now,
        created_at=created_at or now,
        policy_version=values.pop("policy_version", "1.0"),
        **values,
    )
    db.session.add(user)
    db.session.commit()
    return user.id


def add_subscription(
    user_id: int, status: str, ended_at: datetime | None = None, **values: Any
) -> int:
    """A subscription row as the billing webhooks would leave it."""
    from app.billing.models import Subscription

    sub = Subscription(
        user_id=user_id,
        plan=values.pop("plan", "pro"),
        status=status,
        ended_at=ended_at,
        stripe_customer_id=values.pop("stripe_customer_id", f"cus_{user_id}"),
        cancel_at_period_end=False,
        **values,
    )
    db.session.add(sub)
    db.session.commit()
    return sub.id


def add_dataset(user_id: int, name: str = "faces", files: int = 2) -> int:
    """A dataset with `files` ready images, each with its original and thumbnail stored."""
    from app.datasets.models import Dataset, DatasetItem

    dataset = Dataset(user_id=user_id, name=name, trigger_word="ada")
    db.session.add(dataset)
    db.session.flush()
    storage = get_storage()
    for number in range(files):
        item = DatasetItem(
            dataset_id=dataset.id,
            filename=f"{number}.png",
            content_type="image/png",
            media_kind="image",
            size_bytes=4,
            storage_key="",
            status="ready",
        )
        db.session.add(item)
        db.session.flush()
        prefix = f"{dataset.storage_prefix()}items/{item.id}/"
        item.storage_key, item.thumbnail_key = prefix + "original.png", prefix + "thumbnail.webp"
        storage.put(item.storage_key, f"image {user_id}-{number}".encode(), "image/png")
        storage.put(item.thumbnail_key, b"thumb", "image/webp")
    db.session.commit()
    return dataset.id


def add_run(
    user_id: int,
    dataset_id: int | None = None,
    samples: int = 2,
    status: str = "succeeded",
    captions: bool = False,
) -> int:
    """A finished run with a LoRA, a ComfyUI file, a checkpoint and `samples` samples stored
    (and the captions.txt it trained with, if asked)."""
    from app.trainings.models import TrainingRun

    run = TrainingRun(
        user_id=user_id,
        dataset_id=dataset_id,
        name="portrait",
        family="tiny-sd",
        config={"steps": 2, "rank": 4},
        status=status,
        queue="gpu-cpu",
        total_steps=2,
    )
    db.session.add(run)
    db.session.flush()
    storage, prefix = get_storage(), run.storage_prefix()
    artifacts: dict[str, Any] = {
        "lora": f"{prefix}lora/pytorch_lora_weights.safetensors",
        "comfyui": f"{prefix}lora/attune-run-{run.id}.safetensors",
        "checkpoints": {"1": f"{prefix}checkpoints/step-000001/lora.safetensors"},
        "samples": [f"{prefix}samples/{n}.png" for n in range(samples)],
    }
    for key in [
        artifacts["lora"],
        artifacts["comfyui"],
        *artifacts["checkpoints"].values(),
        *artifacts["samples"],
    ]:
        storage.put(key, f"run file {run.id}".encode())
    if captions:
        artifacts["captions"] = f"{prefix}captions.txt"
        storage.put(artifacts["captions"], b"a.png\tphoto of sks\n")
    run.artifacts = artifacts
    db.session.commit()
    return run.id


def stored_keys(prefix: str) -> list[str]:
    """The object keys under `prefix` in the app's storage. Needs an app context."""
    return [info.key for info in get_storage().list(prefix)]


ENDED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def retention_at(moment: datetime) -> dict[str, int]:
    """Run the hourly job as if it were `moment`."""
    from jobs.retention import apply_retention

    with time_machine.travel(moment, tick=False):
        return apply_retention(now=moment)


def snapshot(user_id: int) -> dict[str, object]:
    """What a person would notice: their stored files, datasets, downloads and receipts."""
    base = f"users/{user_id}/"
    runs = db.session.scalars(select(TrainingRun).where(TrainingRun.user_id == user_id)).all()
    receipts = db.session.scalars(
        select(DeletionReceipt)
        .where(DeletionReceipt.user_id == user_id)
        .order_by(DeletionReceipt.id)
    ).all()
    return {
        "datasets": len(
            db.session.scalars(select(Dataset).where(Dataset.user_id == user_id)).all()
        ),
        "dataset_files": len(stored_keys(base + "datasets/")),
        "samples": len([k for k in stored_keys(base + "runs/") if "/samples/" in k]),
        "lora_files": len([k for k in stored_keys(base + "runs/") if "/samples/" not in k]),
        "downloads": sorted(k for run in runs for k in (run.artifacts or {})),
        "receipts": [(r.scope, r.reason, r.status, r.object_count) for r in receipts],
    }
