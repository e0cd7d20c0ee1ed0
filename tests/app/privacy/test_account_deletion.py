"""Deleting an account: billing stopped, runs stopped, every object and row gone, sessions dead."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.accounts.models import User
from app.billing.models import GpuUsage, Subscription
from app.db_types import utcnow
from app.extensions import db, get_storage
from app.privacy import erasure
from app.privacy.models import DataExport
from app.trainings.models import TrainingRun
from tests.app.privacy.support import (  # noqa: F401 (inline_jobs is a fixture)
    add_dataset,
    add_run,
    add_subscription,
    inline_jobs,
    make_user,
    run_jobs,
    stored_keys,
)
from tests.support.smtp import SmtpServer
from tests.support.web import GOOD_PASSWORD, csrf_token, sign_in, sign_up

pytestmark = pytest.mark.usefixtures("inline_jobs")


@pytest.fixture
def cancelled_billing(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Records the calls to billing's immediate cancellation, then lets it run for real.

    The subscriptions here are development-billing ones (no Stripe id), which billing ends
    locally; its Stripe path is tested with billing.
    """
    calls: list[int] = []
    real = erasure.end_subscription_now

    def cancel(user: User) -> None:
        calls.append(user.id)
        real(user)

    monkeypatch.setattr(erasure, "end_subscription_now", cancel)
    yield calls


def delete_account(client: FlaskClient, password: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get("/account/delete").get_data(as_text=True))
    return client.post("/account/delete", data={"csrf_token": token, "password": password})


def test_deleting_the_account_erases_everything_but_billing_records(
    app: Flask, mailbox: SmtpServer, cancelled_billing: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    laptop = app.test_client()
    sign_up(laptop)
    phone = app.test_client()
    sign_in(phone, "ada@example.com")
    stolen_cookie = laptop.get_cookie("session").value
    with app.app_context():
        user_id = db.session.scalar(select(User.id))
        dataset_id = add_dataset(user_id, files=3)
        add_run(user_id, dataset_id)
        running = add_run(user_id, dataset_id, status="running")
        db.session.get(TrainingRun, running).heartbeat_at = utcnow()  # its worker is alive
        queued = add_run(user_id, dataset_id, status="queued")
        add_subscription(user_id, "active", current_period_end=utcnow() + timedelta(days=20))
        now = utcnow()
        db.session.add(
            GpuUsage(
                user_id=user_id,
                run_id=running,
                segment_key="s1",
                gpu_seconds=60,
                started_at=now,
                ended_at=now,
            )
        )
        db.session.add(
            DataExport(
                user_id=user_id, status="ready", storage_key=f"users/{user_id}/exports/1/x.zip"
            )
        )
        db.session.commit()
        storage = get_storage()
        storage.put(f"users/{user_id}/exports/1/x.zip", b"zip")
        storage.create_multipart(
            f"users/{user_id}/datasets/{dataset_id}/items/9/original.png", "image/png"
        )
        other = make_user("grace@example.com")
        other_dataset = add_dataset(other, files=1)
        mailbox.clear()

    wrong = delete_account(laptop, "not my password")
    assert wrong.status_code == 422 and "not your password" in wrong.get_data(as_text=True)
    empty = delete_account(laptop, "")
    assert empty.status_code == 422
    assert "Your password is required" in empty.get_data(as_text=True)
    assert phone.get("/dashboard").status_code == 200

    assert delete_account(laptop, GOOD_PASSWORD).headers["Location"] == "/"
    assert laptop.get("/dashboard").status_code == 302
    assert phone.get("/dashboard").status_code == 302  # every session is revoked at once
    assert sign_in(app.test_client(), "ada@example.com").status_code == 422
    with app.app_context():  # the request itself stopped the work, before any job ran
        statuses = dict(db.session.execute(select(TrainingRun.id, TrainingRun.status)).all())
        assert statuses[queued] == "cancelled"
        assert db.session.get(TrainingRun, running).cancel_requested is True
    # The erasure job, on its own queue: billing cancelled; it waits for the running run
    # (a worker would look twice a second for a minute; here it looks once).
    monkeypatch.setattr(erasure, "STOP_WAIT_IN_JOB", timedelta(0))
    assert run_jobs(app, "privacy") == 1
    with app.app_context():
        assert cancelled_billing == [user_id]
        assert db.session.get(User, user_id) is not None
        # The GPU worker notices within a step and stops; the job's next attempt finishes.
        db.session.get(TrainingRun, running).status = "cancelled"
        db.session.commit()
    from jobs.accounts import delete_account as erase_job

    assert erase_job(user_id, 2) == "deleted"
    assert erase_job(user_id, 3) == "already deleted"  # safe to run again
    with app.app_context():
        assert stored_keys(f"users/{user_id}/") == []
        assert get_storage().list_multipart_uploads(f"users/{user_id}/") == []
        assert db.session.get(User, user_id) is None
        assert db.session.scalars(select(TrainingRun)).all() == []
        sub = db.session.scalars(select(Subscription)).one()
        kept = (sub.user_id, sub.stripe_customer_id, sub.status, sub.ended_at is not None)
        assert kept == (None, f"cus_{user_id}", "canceled", True)
        usage = db.session.scalars(select(GpuUsage)).one()
        assert (usage.user_id, usage.run_id, usage.gpu_seconds) == (None, None, 60)
        assert len(stored_keys(f"users/{other}/datasets/{other_dataset}/")) == 2  # untouched
    replay = app.test_client()
    replay.set_cookie("session", stolen_cookie)
    assert replay.get("/dashboard").status_code == 302
    run_jobs(app)
    receipt = [m for m in mailbox.messages if m["To"] == "ada@example.com"][-1]
    assert "has been deleted" in receipt["Subject"]
    body = receipt.get_payload(decode=True).decode()
    assert "Datasets: 1" in body and "Training runs: 3" in body
    # 3 originals + 3 thumbnails, 5 files per run (LoRA, ComfyUI, checkpoint, 2 samples), 1 export
    assert "Stored objects (all versions removed): 22" in body


def test_a_google_only_account_needs_a_fresh_google_sign_in(
    app: Flask, cancelled_billing: list[int]
) -> None:
    with app.app_context():
        user_id = make_user("g@example.com")
    client = app.test_client()
    from tests.app.privacy.support import signed_in_as

    signed_in_as(client, user_id)
    refused = delete_account(client, "")
    assert refused.status_code == 422 and "Confirm with Google" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, user_id).deletion_requested_at is None
