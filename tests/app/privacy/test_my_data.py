"""The privacy page, the policy-change notice, "my data", deletion dates and early deletion."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.accounts.models import User
from app.billing.services import long_date, long_moment
from app.datasets.models import Dataset
from app.db_types import utcnow
from app.extensions import db, get_storage
from app.privacy.models import DeletionReceipt
from app.trainings.models import Generation, TrainingRun
from tests.app.privacy.support import (  # noqa: F401 (inline_jobs is a fixture)
    add_dataset,
    add_run,
    add_subscription,
    inline_jobs,
    make_user,
    run_jobs,
    signed_in_as,
    stored_keys,
)
from tests.support.web import csrf_token

pytestmark = pytest.mark.usefixtures("inline_jobs")


def ask_deletion(client: FlaskClient, scope: str, target_id: object = "") -> str:
    """Press a delete button on the my-data page; returns the page shown afterwards."""
    token = csrf_token(client.get("/my-data").get_data(as_text=True))
    data = {"csrf_token": token, "scope": scope, "target_id": str(target_id)}
    response = client.post("/my-data/delete", data=data)
    if response.status_code != 302:
        return response.get_data(as_text=True)
    return client.get("/my-data").get_data(as_text=True)


def test_privacy_page_states_what_the_code_does(client: FlaskClient) -> None:
    page = client.get("/privacy").get_data(as_text=True)
    assert "Version 1.0" in page and "23 November 2026" in page
    for promise in (
        "do <strong>not</strong> use analytics",
        "30 days",
        "90 days",
        "If you never subscribed",
        "every stored version",
        "argon2id",
        "one essential cookie",
    ):
        assert promise in page
    assert "Privacy policy</a> (version 1.0)" in client.get("/sign-up").get_data(as_text=True)


def test_a_newer_policy_version_is_announced_until_acknowledged(app: Flask) -> None:
    with app.app_context():
        old = make_user("old@example.com", policy_version="0.9")
        current = make_user("new@example.com")
    client = signed_in_as(app.test_client(), old)
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Our privacy policy changed (now version 1.0)" in page
    client.post("/privacy/accept", data={"csrf_token": csrf_token(page)})
    assert "privacy policy changed" not in client.get("/dashboard").get_data(as_text=True)
    fresh = signed_in_as(app.test_client(), current)
    assert "privacy policy changed" not in fresh.get("/dashboard").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, old).policy_version == "1.0"


def test_my_data_shows_everything_and_deletion_dates_once_the_subscription_ended(
    app: Flask,
) -> None:
    with app.app_context():
        user_id = make_user(company="Engines Ltd")
        dataset_id = add_dataset(user_id, files=2)
        run_id = add_run(user_id, dataset_id)
        sub_id = add_subscription(user_id, "active", stripe_subscription_id="sub_1")
    client = signed_in_as(app.test_client(), user_id)
    page = client.get("/my-data").get_data(as_text=True)
    for shown in ("Engines Ltd", "faces", "portrait", "pro: active", "Your subscription is active"):
        assert shown in page
    assert "deleted on" not in client.get(f"/datasets/{dataset_id}").get_data(as_text=True).lower()
    ended = utcnow() - timedelta(days=2)
    with app.app_context():
        from app.billing.models import Subscription

        sub = db.session.get(Subscription, sub_id)
        sub.status, sub.ended_at = "canceled", ended
        db.session.commit()
    media, loras = ended + timedelta(days=30), ended + timedelta(days=90)
    # The dates are ahead, so every page says "will be deleted", all in one date format.
    page = client.get("/my-data").get_data(as_text=True)
    assert f"will be deleted on <strong>{long_moment(media)}</strong>" in page
    assert f"will be deleted on <strong>{long_moment(loras)}</strong>" in page
    for path in ("/datasets", f"/datasets/{dataset_id}"):
        assert f"Will be deleted on {long_date(media)}" in client.get(path).get_data(as_text=True)
    runs_page = client.get("/runs").get_data(as_text=True)
    assert f"LoRA will be deleted on {long_date(loras)}" in runs_page
    run_page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert f"Samples will be deleted on {long_date(media)}" in run_page
    assert f"LoRA files will be deleted on {long_date(loras)}" in run_page


def test_deleting_a_dataset_now_leaves_a_receipt(app: Flask) -> None:
    with app.app_context():
        user_id = make_user()
        keep = add_dataset(user_id, name="keep", files=1)
        drop = add_dataset(user_id, name="drop", files=3)
        other = make_user("grace@example.com")
        foreign = add_dataset(other, name="grace", files=1)
        add_subscription(user_id, "active", stripe_subscription_id="sub_1")
        busy = add_run(user_id, drop, status="queued")
    client = signed_in_as(app.test_client(), user_id)
    assert "Cancel it first" in ask_deletion(client, "dataset", drop)
    with app.app_context():
        db.session.get(TrainingRun, busy).status = "cancelled"
        db.session.commit()
    assert "Deleting: dataset “drop”" in ask_deletion(client, "dataset", drop)
    run_jobs(app, "privacy")
    page = client.get("/my-data").get_data(as_text=True)
    assert "You asked for it" in page and "in progress" not in page
    with app.app_context():
        assert stored_keys(f"users/{user_id}/datasets/{drop}/") == []
        assert len(stored_keys(f"users/{user_id}/datasets/{keep}/")) == 2
        receipt = db.session.scalars(select(DeletionReceipt)).one()
        assert (receipt.what, receipt.object_count, receipt.status) == ("dataset “drop”", 6, "done")
    # Someone else's dataset is a 404; bad requests get a message, never a 500.
    token = csrf_token(client.get("/my-data").get_data(as_text=True))
    response = client.post(
        "/my-data/delete", data={"csrf_token": token, "scope": "dataset", "target_id": foreign}
    )
    assert response.status_code == 404
    assert "Unknown deletion request" in ask_deletion(client, "nonsense")
    assert "not valid" in ask_deletion(client, "dataset", "1; drop table")
    with app.app_context():
        assert len(stored_keys(f"users/{other}/datasets/{foreign}/")) == 2


def test_deleting_all_files_keeps_the_account(app: Flask) -> None:
    with app.app_context():
        user_id = make_user()
        dataset_id = add_dataset(user_id, files=2)
        render = Generation(user_id=user_id, run_id=add_run(user_id, dataset_id), prompt="a")
        render.strength, render.seed, render.status = 1.0, 1, "succeeded"
        db.session.add(render)
        db.session.flush()
        render.media_keys = [render.storage_prefix() + "0.png"]
        get_storage().put(render.media_keys[0], b"png", "image/png")
        busy = add_run(user_id, dataset_id, status="running")
    client = signed_in_as(app.test_client(), user_id)
    assert "Cancel your queued and running runs first" in ask_deletion(client, "everything")
    with app.app_context():
        db.session.get(TrainingRun, busy).status = "cancelled"
        db.session.commit()
    ask_deletion(client, "everything")
    run_jobs(app, "privacy")
    with app.app_context():
        assert stored_keys(f"users/{user_id}/") == []
        assert db.session.scalars(select(Dataset)).all() == []
        assert all(run.artifacts == {} for run in db.session.scalars(select(TrainingRun)))
        assert db.session.scalars(select(Generation.media_keys)).one() == []
        receipt = db.session.scalars(select(DeletionReceipt)).one()
        assert receipt.what.startswith("All your stored files") and receipt.object_count == 15
    assert client.get("/dashboard").status_code == 200
