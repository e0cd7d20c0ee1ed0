"""No export or try-it render is lost when its job is: the request is recorded first, so when
Redis refuses the job (down at that moment) or forgets it (restarted empty), or its worker dies,
the sweeper (jobs.maintenance.requeue_lost_work, every 10 minutes) queues it again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue, SimpleWorker
from rq.job import Job
from sqlalchemy import func, select

from app import queues
from app.billing.models import GpuUsage
from app.db_types import utcnow
from app.extensions import db, get_redis
from app.privacy.exports import export_job_id
from app.privacy.models import DataExport
from app.trainings.generations import generation_job_id
from app.trainings.models import Generation
from jobs.maintenance import requeue_lost_work
from tests.support.accounts import signed_in_client
from tests.support.web import csrf_token
from tests.support.world import build_world

AN_HOUR_AGO = timedelta(hours=1)


def redis_refuses_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis goes away between the database commit and the enqueue."""

    def down(name: str) -> Queue:
        raise RedisConnectionError("Connection refused (injected)")

    monkeypatch.setattr(queues, "get_queue", down)


def backdate(model: type[DataExport] | type[Generation], row_id: int, delta: timedelta) -> None:
    """Pretend the row was created `delta` ago."""
    row = db.session.get(model, row_id)
    assert row is not None
    row.created_at = utcnow() - delta
    db.session.commit()


def test_an_export_whose_job_was_refused_or_lost_is_built(
    rel_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(rel_app)
    client = signed_in_client(rel_app, "owner@example.com")
    token = csrf_token(client.get("/my-data").text)
    with monkeypatch.context() as patch:
        redis_refuses_jobs(patch)
        refused = client.post("/my-data/exports", data={"csrf_token": token})
    assert refused.status_code == 503 and "unavailable" in refused.text
    with rel_app.app_context():
        export = db.session.scalars(
            select(DataExport).where(DataExport.id != world.export_id)
        ).one()
        assert export.status == "queued"
        # A fresh request is left alone (its enqueue may be a moment away), an old one is not.
        assert requeue_lost_work()["exports"] == 0
        backdate(DataExport, export.id, AN_HOUR_AGO)
        assert requeue_lost_work()["exports"] == 1
        assert requeue_lost_work()["exports"] == 0  # queued now: a second pass leaves it
        SimpleWorker(["cpu"], connection=get_redis()).work(burst=True)
        db.session.refresh(export)
        assert export.status == "ready" and export.storage_key

        # Building when its worker died and Redis forgot the job: built again.
        stuck = DataExport(user_id=world.user_id, status="building")
        db.session.add(stuck)
        db.session.commit()
        backdate(DataExport, stuck.id, AN_HOUR_AGO)
        assert not Job.exists(export_job_id(stuck.id), connection=get_redis())
        assert requeue_lost_work()["exports"] == 1
        SimpleWorker(["cpu"], connection=get_redis()).work(burst=True)
        db.session.refresh(stuck)
        assert stuck.status == "ready"


def test_a_render_whose_job_was_refused_is_queued_again_and_a_dead_one_fails_free(
    rel_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(rel_app)
    client = signed_in_client(rel_app, "owner@example.com")
    token = csrf_token(client.get(f"/runs/{world.run_id}").text)
    form = {"csrf_token": token, "prompt": "sks on a beach", "strength": "0.8", "seed": "7"}
    with monkeypatch.context() as patch:
        redis_refuses_jobs(patch)
        refused = client.post(f"/runs/{world.run_id}/generate", data=form)
    assert refused.status_code == 503
    with rel_app.app_context():
        generation = db.session.scalars(
            select(Generation).where(Generation.id != world.generation_id)
        ).one()
        assert generation.status == "queued"
        backdate(Generation, generation.id, timedelta(minutes=20))
        assert requeue_lost_work()["generations"] == 1
        job = Job.fetch(generation_job_id(generation.id), connection=get_redis())
        assert job.origin == "gpu-cpu" and job.func_name == "jobs.generations.run"
        assert job.args == (generation.id,)
        assert requeue_lost_work()["generations"] == 0

        # Its worker died mid-render and an hour has passed: it fails, free of charge.
        job.delete()
        generation.status = "running"
        db.session.commit()
        backdate(Generation, generation.id, timedelta(hours=2))
        counts = requeue_lost_work()
        assert (counts["generations"], counts["generations_failed"]) == (0, 1)
        db.session.refresh(generation)
        assert generation.status == "failed" and "not charged" in (generation.error or "")
        assert db.session.scalar(select(func.count()).select_from(GpuUsage)) == 0
