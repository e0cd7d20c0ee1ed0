"""The retention job at its exact boundaries, with time travel and `now` passed into the job."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.privacy.models import DataExport, RetentionWarning
from app.trainings.models import TrainingRun
from tests.app.privacy.support import (  # noqa: F401 (inline_jobs is a fixture)
    ENDED,
    add_dataset,
    add_run,
    add_subscription,
    inline_jobs,
    make_user,
    retention_at,
    run_jobs,
    signed_in_as,
    snapshot,
    stored_keys,
)
from tests.support.smtp import SmtpServer

in_app = pytest.mark.usefixtures("inline_jobs")  # queued and scheduled jobs run in the test's app
DAY, SECOND = timedelta(days=1), timedelta(seconds=1)


def person_with_data(ended_at: datetime | None = ENDED, created: datetime | None = None) -> int:
    """A person whose subscription ended at `ended_at`, with a dataset and a finished run."""
    user_id = make_user(f"p{datetime.now().timestamp()}@example.com", created or ENDED - 200 * DAY)
    if ended_at is not None:
        add_subscription(user_id, "canceled", ended_at=ended_at)
    add_run(user_id, add_dataset(user_id, files=2), samples=2)
    return user_id


KEPT = {
    "datasets": 1,
    "dataset_files": 4,
    "samples": 2,
    "lora_files": 3,
    "downloads": ["checkpoints", "comfyui", "lora", "samples"],
    "receipts": [],
}


@in_app
def test_media_go_at_30_days_and_loras_at_90_days_to_the_second(app: Flask) -> None:
    with app.app_context():
        user_id = person_with_data()
    retention_at(ENDED + 30 * DAY - SECOND)
    with app.app_context():
        assert snapshot(user_id) == KEPT
    retention_at(ENDED + 30 * DAY)
    after_media = {
        **KEPT,
        "datasets": 0,
        "dataset_files": 0,
        "samples": 0,
        "downloads": ["checkpoints", "comfyui", "lora"],
        "receipts": [("media", "subscription_ended", "done", 6)],
    }
    with app.app_context():
        assert snapshot(user_id) == after_media
    retention_at(ENDED + 90 * DAY - SECOND)
    with app.app_context():
        assert snapshot(user_id) == after_media
    retention_at(ENDED + 90 * DAY)
    with app.app_context():
        assert snapshot(user_id) == {
            **after_media,
            "lora_files": 0,
            "downloads": [],
            "receipts": [*after_media["receipts"], ("loras", "subscription_ended", "done", 3)],
        }
    # The person reads the receipts: what, when, why, how many objects.
    page = signed_in_as(app.test_client(), user_id).get("/my-data").get_data(as_text=True)
    assert "dataset “faces”" in page and "LoRA files of run “portrait”" in page
    assert "Your subscription ended" in page and "1 April 2026, 09:30 UTC" in page


@in_app
def test_the_captions_a_run_trained_go_with_the_media_at_30_days(app: Flask) -> None:
    with app.app_context():
        user_id = make_user("captions@example.com", ENDED - 200 * DAY)
        add_subscription(user_id, "canceled", ended_at=ENDED)
        run_id = add_run(user_id, add_dataset(user_id, files=1), captions=True)
    retention_at(ENDED + 30 * DAY)
    with app.app_context():
        run = db.session.get_one(TrainingRun, run_id)
        kept = stored_keys(f"users/{user_id}/runs/")
        assert "captions" not in run.artifacts and "lora" in run.artifacts
        assert not [key for key in kept if key.endswith("captions.txt")]
        assert [key for key in kept if key.endswith(".safetensors")]


@in_app
def test_subscribing_again_on_day_29_keeps_everything(app: Flask, mailbox: SmtpServer) -> None:
    with app.app_context():
        user_id = person_with_data()
    retention_at(ENDED + 23 * DAY)  # the 7-day warning goes out
    with app.app_context():
        add_subscription(
            user_id,
            "active",
            stripe_subscription_id="sub_again",
            current_period_end=ENDED + 59 * DAY,
        )
    for moment in (ENDED + 29 * DAY + 12 * 3600 * SECOND, ENDED + 30 * DAY, ENDED + 90 * DAY):
        retention_at(moment)
    with app.app_context():
        assert snapshot(user_id) == KEPT
    run_jobs(app)
    assert len(mailbox.messages) == 1  # the 7-day warning only; no 1-day warning once subscribed


@in_app
def test_an_active_subscriber_is_never_touched(app: Flask, mailbox: SmtpServer) -> None:
    with app.app_context():
        user_id = person_with_data(ended_at=None, created=ENDED - 900 * DAY)
        add_subscription(user_id, "active", stripe_subscription_id="sub_live")
    for years in (1, 5):
        retention_at(ENDED + years * 365 * DAY)
    with app.app_context():
        assert snapshot(user_id) == KEPT
        assert db.session.scalars(select(RetentionWarning)).all() == []
    assert run_jobs(app) == 0 and mailbox.messages == []


@in_app
def test_never_subscribed_counts_from_account_creation(app: Flask) -> None:
    created = ENDED - 10 * DAY
    with app.app_context():
        user_id = person_with_data(ended_at=None, created=created)
    retention_at(created + 30 * DAY - SECOND)
    with app.app_context():
        assert snapshot(user_id) == KEPT
    retention_at(created + 30 * DAY)
    with app.app_context():
        assert snapshot(user_id)["receipts"] == [("media", "no_subscription", "done", 6)]


@in_app
def test_warnings_7_days_and_1_day_before_each_sent_once(app: Flask, mailbox: SmtpServer) -> None:
    with app.app_context():
        person_with_data()
    for moment in (ENDED + 23 * DAY - SECOND, ENDED + 23 * DAY, ENDED + 23 * DAY + 3600 * SECOND):
        retention_at(moment)
    run_jobs(app)
    # Dates read as on every page ("1 April 2026", not "01 April 2026"): one format.
    assert [m["Subject"] for m in mailbox.messages] == [
        "Your uploaded datasets and generated images and videos will be deleted on 1 April 2026"
    ]
    assert "1 April 2026, 09:30 UTC" in mailbox.messages[0].get_payload(decode=True).decode()
    assert "01 April" not in mailbox.messages[0].get_payload(decode=True).decode()
    for moment in (ENDED + 29 * DAY, ENDED + 29 * DAY + 3600 * SECOND):
        retention_at(moment)
    run_jobs(app)
    assert len(mailbox.messages) == 2 and "1 April 2026" in mailbox.messages[1]["Subject"]
    # The LoRA group's first pass falls inside its last day (say the job was down for a week):
    # only the 1-day warning is sent, and the missed 7-day one is recorded as handled.
    retention_at(ENDED + 89 * DAY + 3600 * SECOND)
    run_jobs(app)
    assert len(mailbox.messages) == 3
    assert "Your trained LoRA models" in mailbox.messages[2]["Subject"]
    with app.app_context():
        rows = db.session.execute(select(RetentionWarning.group_key, RetentionWarning.days_before))
        assert sorted(days for _, days in rows) == [1, 1, 7, 7]


@in_app
def test_expired_exports_are_deleted(app: Flask) -> None:
    from app.extensions import get_storage

    with app.app_context():
        user_id = make_user()
        export = DataExport(
            user_id=user_id,
            status="ready",
            size_bytes=3,
            finished_at=ENDED,
            expires_at=ENDED + 7 * DAY,
        )
        db.session.add(export)
        db.session.flush()
        key = export.storage_key = f"users/{user_id}/exports/{export.id}/attune-export.zip"
        db.session.commit()
        get_storage().put(key, b"zip")
        add_subscription(user_id, "active", stripe_subscription_id="sub_x")
    retention_at(ENDED + 7 * DAY - SECOND)
    with app.app_context():
        assert stored_keys(f"users/{user_id}/exports/") == [key]
    retention_at(ENDED + 7 * DAY)
    with app.app_context():
        assert stored_keys(f"users/{user_id}/exports/") == []
        assert db.session.scalar(select(DataExport.status)) == "expired"


@in_app
def test_flask_retention_run_applies_the_same_rules(app: Flask) -> None:
    with app.app_context():
        user_id = person_with_data()
    moment = ENDED + 30 * DAY
    with time_machine.travel(moment, tick=False):
        result = app.test_cli_runner().invoke(
            args=["retention", "run", "--now", moment.isoformat()]
        )
    assert result.exit_code == 0, result.output
    assert "deleted_media: 1" in result.output
    with app.app_context():
        assert snapshot(user_id)["receipts"] == [("media", "subscription_ended", "done", 6)]
    bad = app.test_cli_runner().invoke(args=["retention", "run", "--now", "yesterday"])
    assert bad.exit_code != 0 and "ISO 8601" in bad.output


def test_the_job_is_scheduled_hourly(redis_server) -> None:  # type: ignore[no-untyped-def]
    from redis import Redis

    from jobs.scheduler import build_scheduler

    scheduler = build_scheduler(Redis.from_url(redis_server.url))
    jobs = {job.func_name: job for job in scheduler.get_jobs()}
    assert jobs["jobs.retention.apply_retention"].interval == 3600


@pytest.mark.parametrize("subscribed", [True, False], ids=["ended", "never-subscribed"])
def test_billing_page_dates_agree_with_the_job(app: Flask, subscribed: bool) -> None:
    from app.accounts.models import User
    from app.billing.deletion_dates import retention_schedule
    from app.billing.services import long_date

    with app.app_context():
        user_id = make_user()
        if subscribed:
            add_subscription(user_id, "canceled", ended_at=ENDED)
        schedule = retention_schedule(db.session.get(User, user_id))
    assert schedule.is_due
    page = signed_in_as(app.test_client(), user_id).get("/billing").get_data(as_text=True)
    assert 'id="deletion-dates"' in page
    for deadline in (schedule.media_at, schedule.loras_at):
        assert f'datetime="{deadline.isoformat()}">{long_date(deadline)}</time>' in page
