"""The delete request acts at once (links, e-mails, work), and the erasure leaves no trace in
Redis or storage. Jobs run in this process (tests/jobs has the same on a live worker)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.accounts.models import User
from app.db_types import utcnow
from app.extensions import db, get_redis, get_storage
from app.trainings.models import Generation, TrainingRun
from tests.app.privacy.support import (  # noqa: F401 (inline_jobs is a fixture)
    add_dataset,
    add_run,
    add_subscription,
    inline_jobs,
    make_user,
    path_of,
    run_jobs,
    stored_keys,
)
from tests.support.leftovers import (
    footprint_of,
    redis_leftovers,
    storage_leftovers,
    upload_url_records,
)
from tests.support.smtp import SmtpServer
from tests.support.web import GOOD_PASSWORD, api_headers, csrf_token, sign_in, sign_up

pytestmark = pytest.mark.usefixtures("inline_jobs")


def request_deletion(client: FlaskClient) -> None:
    """Confirm the account deletion with the password, as the page does."""
    token = csrf_token(client.get("/account/delete").get_data(as_text=True))
    response = client.post("/account/delete", data={"csrf_token": token, "password": GOOD_PASSWORD})
    assert response.headers["Location"] == "/"


def ada_with_a_finished_run(app: Flask) -> tuple[FlaskClient, int, int]:
    """Ada, signed in, with a dataset and a finished run; returns (client, user id, run id)."""
    client = app.test_client()
    sign_up(client)
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "ada@example.com"))
        add_subscription(user_id, "active", current_period_end=utcnow() + timedelta(days=20))
        run_id = add_run(user_id, add_dataset(user_id))
    return client, user_id, run_id


def test_download_links_die_with_the_request_before_any_job_ran(app: Flask) -> None:
    client, user_id, run_id = ada_with_a_finished_run(app)
    links = [
        path_of(client.get(f"/runs/{run_id}/download/{kind}").headers["Location"])
        for kind in ("lora", "comfyui", "sample/0.png", "checkpoint/1")
    ]
    assert all(client.get(link).status_code == 200 for link in links)

    request_deletion(client)
    # Nothing has run yet: the files are all still stored, and no link serves them any more.
    with app.app_context():
        assert len(stored_keys(f"users/{user_id}/runs/{run_id}/")) == 5
    stranger = app.test_client()  # a link works without a session: it is the credential
    assert [stranger.get(link).status_code for link in links] == [404] * 4


def test_no_email_reaches_an_account_being_deleted(app: Flask, mailbox: SmtpServer) -> None:
    from app.accounts.emails import queue_password_changed
    from jobs.training import notify_owner

    client, user_id, run_id = ada_with_a_finished_run(app)
    run_jobs(app)  # the sign-up confirmation goes out
    with app.app_context():  # an e-mail queued before the request, sent after it
        queue_password_changed(db.session.get(User, user_id))
    mailbox.clear()
    request_deletion(client)
    with app.app_context():
        notify_owner(db.session.get(TrainingRun, run_id))  # "Your LoRA is ready", sent now
    run_jobs(app)
    assert [m["Subject"] for m in mailbox.messages] == []

    run_jobs(app, "privacy")  # the erasure: afterwards only its receipt is sent
    run_jobs(app)
    assert [m["Subject"] for m in mailbox.messages] == ["Your Attune account has been deleted"]


KINDS_OF_TRACES = (
    "attune:run:",
    "attune:bucket-preview:",
    "rq:job:run-",
    "rq:job:generation-",
    "rq:job:export-",
    "rq:job:bucket-preview-",
    "rq:job:webhook-",
    "LIMITS:LIMITER/account:",
    "LIMITS:LIMITER/sign-in:",
    "LIMITS:LIMITER/reset:",
)


class _Step:
    """A trainer step event, as training.ProgressEvent.to_dict() gives it."""

    def __init__(self, step: int) -> None:
        self.step = step

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "step", "step": self.step, "total_steps": 9, "loss": 0.5}


def _live_run(app: Flask, user_id: int) -> int:
    """A finished run whose live keys (log, loss curve, progress) the worker wrote."""
    from jobs.progress import RunReporter

    with app.app_context():
        run_id = add_run(user_id, add_dataset(user_id, name="live"))
        reporter = RunReporter(db.session.get(TrainingRun, run_id), get_redis())
        reporter.log("attempt 1 started")
        reporter.on_progress(_Step(1))
    return run_id


def test_the_erasure_leaves_nothing_of_the_person_in_redis_or_storage(
    app: Flask, mailbox: SmtpServer
) -> None:
    from app.datasets.models import Dataset
    from app.datasets.previews import request_preview
    from app.privacy.exports import request_export
    from app.trainings.events import emit_run_event
    from app.trainings.generations import queue_generation
    from app.trainings.services import requeue_run
    from tests.support.webhooks import add_endpoint

    client, user_id, run_id = ada_with_a_finished_run(app)
    with app.app_context():
        grace = make_user("grace@example.com", name="Grace Hopper")
    live, graces = _live_run(app, user_id), _live_run(app, grace)
    with app.app_context():
        user = db.session.get(User, user_id)
        dataset = db.session.scalars(select(Dataset).where(Dataset.user_id == user_id)).first()
        request_export(user)
        request_preview(dataset, "tiny-sd", 64)
    run_jobs(app)  # finished jobs: the export, the bucket preview, the e-mails
    # Work still queued when the person leaves (uploads, a reset, a webhook delivery, a run
    # and a render), and per-account rate-limit counters.
    uploads = [
        client.post(
            f"/api/datasets/{dataset.id}/uploads",
            json={"filename": name, "size": size},
            headers=api_headers(client),
        ).get_json()
        for name, size in (("big.png", 40 * 2**20), ("late.png", 4))
    ]
    assert [upload["method"] for upload in uploads] == ["multipart", "single"]
    assert sign_in(app.test_client(), "ada@example.com", "wrong password").status_code == 422
    page = app.test_client()
    token = csrf_token(page.get("/forgot-password").get_data(as_text=True))
    page.post("/forgot-password", data={"csrf_token": token, "email": "ada@example.com"})
    with app.app_context():
        add_endpoint(user_id, "https://hooks.example/ada")
        emit_run_event(db.session.get(TrainingRun, run_id), "completed")  # a queued delivery
        requeue_run(db.session.get(TrainingRun, live))
        generation = Generation(user_id=user_id, run_id=run_id, prompt="x", strength=1, seed=1)
        db.session.add(generation)
        db.session.commit()
        queue_generation(generation, "gpu-cpu")
    person = footprint_of(app, user_id)
    with app.app_context():
        redis = get_redis()
    found = redis_leftovers(redis, person)  # the scan sees each kind there is to find
    for kind in KINDS_OF_TRACES:
        assert any(key.startswith(kind) for key in found), kind
    assert len(upload_url_records(app, person)) == 1  # the local record behind late.png's URL

    request_deletion(client)
    run_jobs(app, "privacy")
    run_jobs(app)  # the receipt goes out; the queued reset finds no account
    assert mailbox.messages[-1]["Subject"] == "Your Attune account has been deleted"
    assert redis_leftovers(redis, person) == {}
    assert storage_leftovers(app, person) == []
    assert upload_url_records(app, person) == []
    assert client.put(path_of(uploads[1]["urls"][0]), data=b"late").status_code == 403
    # An S3 presigned PUT cannot be refused until it expires; the last sweep, queued for
    # then, removes what one brought in after the erasure.
    from jobs.accounts import sweep_erased_account

    with app.app_context():
        get_storage().put(f"users/{user_id}/datasets/{dataset.id}/items/9/upload/x.png", b"x")
    assert storage_leftovers(app, person) != []
    assert sweep_erased_account(user_id) == 1
    assert storage_leftovers(app, person) == []
    with app.app_context():
        assert db.session.get(User, user_id) is None
        grace_left = redis_leftovers(redis, footprint_of(app, grace))
    assert any(f"attune:run:{graces}:" in key for key in grace_left)  # others keep theirs


def test_renders_are_cancelled_and_a_late_one_renders_nothing(app: Flask) -> None:
    from jobs.generations import run as render

    client, user_id, run_id = ada_with_a_finished_run(app)
    with app.app_context():
        queued = Generation(user_id=user_id, run_id=run_id, prompt="x", strength=1, seed=1)
        # A worker had already taken this one (a render is picked up again after a crash).
        taken = Generation(user_id=user_id, run_id=run_id, prompt="y", strength=1, seed=2)
        taken.status = "running"
        db.session.add_all([queued, taken])
        db.session.commit()
        queued_id, taken_id = queued.id, taken.id
    request_deletion(client)
    with app.app_context():
        assert db.session.get(Generation, queued_id).status == "cancelled"
        assert render(queued_id) == "skipped"
        assert render(taken_id) == "cancelled"
        assert stored_keys(f"users/{user_id}/media/") == []
