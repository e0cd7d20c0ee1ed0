"""Sweepers: stale uploads are aborted, runs whose job Redis lost are queued again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from rq import Queue
from sqlalchemy import select

from app.accounts.models import User
from app.datasets.models import Dataset, DatasetItem
from app.db_types import utcnow
from app.extensions import db, get_redis, get_storage
from app.trainings.models import TrainingRun
from jobs.maintenance import abort_stale_uploads, requeue_stale_runs
from tests.support.apps import running_app


@pytest.fixture
def sweep_app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app on PostgreSQL, inside its context, as a worker would run the sweepers."""
    with running_app(request, "postgres") as application, application.app_context():
        yield application


def _dataset() -> Dataset:
    user = User(email="ada@example.com", name="Ada", adult_confirmed_at=utcnow())
    db.session.add(user)
    db.session.flush()
    dataset = Dataset(user_id=user.id, name="Cats")
    db.session.add(dataset)
    db.session.flush()
    return dataset


def test_uploads_abandoned_for_a_day_are_aborted_and_forgotten(sweep_app: Flask) -> None:
    dataset, storage = _dataset(), get_storage()
    items = []
    for age_hours in (30, 2):
        key = f"{dataset.storage_prefix()}items/{age_hours}/original.jpg"
        upload_id = storage.create_multipart(key, "image/jpeg")
        item = DatasetItem(
            dataset_id=dataset.id, filename=f"{age_hours}.jpg", content_type="image/jpeg",
            storage_key="", upload_key=key, upload_id=upload_id, size_bytes=10,
            created_at=utcnow() - timedelta(hours=age_hours),
        )  # fmt: skip
        db.session.add(item)
        items.append(item)
    db.session.commit()
    assert abort_stale_uploads() == 1
    remaining = db.session.scalars(select(DatasetItem.filename)).all()
    assert remaining == ["2.jpg"]
    open_uploads = {u.upload_id for u in storage.list_multipart_uploads("users/")}
    assert open_uploads == {items[1].upload_id}
    assert abort_stale_uploads() == 0  # safe to run again


def test_a_queued_run_whose_job_redis_lost_is_queued_again(sweep_app: Flask) -> None:
    dataset = _dataset()
    run = TrainingRun(
        user_id=dataset.user_id, dataset_id=dataset.id, name="r", family="tiny-sd",
        config={"family": "tiny-sd", "steps": 3}, total_steps=3, queue="gpu-cpu",
        job_id="run-1-1",
    )  # fmt: skip
    db.session.add(run)
    db.session.commit()
    assert requeue_stale_runs() == {"resumed": 0, "failed": 0, "requeued": 1}
    queue = Queue("gpu-cpu", connection=get_redis())
    assert queue.job_ids == [f"run-{run.id}-1"]
    assert requeue_stale_runs()["requeued"] == 0  # the job exists now


def test_a_run_whose_workers_keep_dying_fails_uncharged(sweep_app: Flask) -> None:
    from app.billing.models import GpuUsage

    dataset = _dataset()
    now = utcnow()
    run = TrainingRun(
        user_id=dataset.user_id, dataset_id=dataset.id, name="r", family="tiny-sd",
        config={"family": "tiny-sd", "steps": 3}, total_steps=3, queue="gpu-cpu",
        status="running", attempts=3, started_at=now - timedelta(minutes=30),
        heartbeat_at=now - timedelta(minutes=20),
    )  # fmt: skip
    db.session.add(run)
    db.session.commit()
    assert requeue_stale_runs()["failed"] == 1
    db.session.refresh(run)
    assert run.status == "failed" and run.platform_fault
    assert "not charged" in run.error
    usage = db.session.scalar(select(GpuUsage))
    assert usage.charged is False and usage.gpu_seconds == pytest.approx(600, abs=1)
