"""No upload is lost when its ingest job is: Redis forgetting the job, or the job failing while
storage was down, leaves the item "uploaded" in the database, and the sweeper
(jobs.maintenance.requeue_stuck_ingests, every 10 minutes) queues it again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus

from app.datasets.models import DatasetItem
from app.datasets.uploads import ingest_job_id
from app.db_types import utcnow
from app.extensions import db, get_redis, get_storage
from jobs.maintenance import requeue_stuck_ingests
from storage import StorageError
from tests.support.accounts import person_with_dataset
from tests.support.media_files import noise_png_bytes


def upload(client: FlaskClient, token: str, dataset_id: int, name: str) -> int:
    """Start, PUT and complete one PNG; its ingest job is now queued."""
    data = noise_png_bytes((48, 48), seed=len(name))
    api = f"/api/datasets/{dataset_id}/uploads"
    target = client.post(api, json={"filename": name, "size": len(data)},
                         headers={"X-CSRFToken": token}).get_json()  # fmt: skip
    assert client.put(target["urls"][0].removeprefix("http://localhost"), data=data).status_code
    item_id = target["item"]["id"]
    done = client.post(f"{api}/{item_id}/complete", json={"etags": []},
                       headers={"X-CSRFToken": token})  # fmt: skip
    assert done.status_code == 200
    return int(item_id)


def age(item_id: int, delta: timedelta) -> None:
    """Pretend the item was uploaded `delta` ago."""
    item = db.session.get(DatasetItem, item_id)
    assert item is not None
    item.created_at = utcnow() - delta
    db.session.commit()


def work() -> None:
    """Drain the cpu queue in this process (the task reuses the test's app context)."""
    SimpleWorker(["cpu"], connection=get_redis()).work(burst=True)


def status_of(item_id: int) -> str:
    db.session.expire_all()
    item = db.session.get(DatasetItem, item_id)
    assert item is not None
    return item.status


def test_lost_and_failed_ingest_jobs_are_queued_again(
    rel_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, token, dataset_id = person_with_dataset(rel_app, "Lost")
    lost = upload(client, token, dataset_id, "lost.png")
    waiting = upload(client, token, dataset_id, "waiting.png")
    with rel_app.app_context():
        redis = get_redis()
        # Redis forgets the first job; the second is still queued (and must be left alone).
        Job.fetch(ingest_job_id(lost), connection=redis).delete()
        for item_id in (lost, waiting):
            age(item_id, timedelta(hours=1))
        assert requeue_stuck_ingests() == {"requeued": 1, "rejected": 0}
        assert requeue_stuck_ingests() == {"requeued": 0, "rejected": 0}  # now it is queued
        assert len(Queue("cpu", connection=redis).get_job_ids()) == 2
        work()
        assert (status_of(lost), status_of(waiting)) == ("ready", "ready")

    # Storage down while the job ran: the job fails, the item waits, the sweeper retries it.
    failed = upload(client, token, dataset_id, "failed.png")
    with rel_app.app_context():
        storage = get_storage()
        real = storage.download_file

        def broken(*args: object, **kwargs: object) -> None:
            raise StorageError("storage is down (injected)")

        monkeypatch.setattr(storage, "download_file", broken)
        work()
        assert Job.fetch(ingest_job_id(failed), connection=get_redis()).get_status() == (
            JobStatus.FAILED
        )
        assert status_of(failed) == "uploaded"
        monkeypatch.setattr(storage, "download_file", real)
        age(failed, timedelta(hours=1))
        assert requeue_stuck_ingests()["requeued"] == 1
        work()
        assert status_of(failed) == "ready"

    # Still stuck after three days: refused with a reason, its bytes deleted.
    hopeless = upload(client, token, dataset_id, "hopeless.png")
    with rel_app.app_context():
        Job.fetch(ingest_job_id(hopeless), connection=get_redis()).delete()
        age(hopeless, timedelta(days=4))
        assert requeue_stuck_ingests() == {"requeued": 0, "rejected": 1}
        item = db.session.get(DatasetItem, hopeless)
        assert item is not None and item.status == "rejected"
        assert "upload it again" in (item.reject_reason or "")
        assert item.upload_key and get_storage().stat(item.upload_key) is None
