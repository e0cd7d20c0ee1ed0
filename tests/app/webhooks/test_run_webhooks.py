"""A run's own webhook: set through POST /api/runs, validated before anything is reserved,
and events that follow its filter and the account's subscriptions; progress is throttled."""

from __future__ import annotations

import json
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.accounts.models import User
from app.apikeys.services import create_key
from app.extensions import db, get_redis
from app.trainings.events import emit_run_event
from app.trainings.models import QuotaPeriod, TrainingRun
from app.webhooks.models import RunWebhookSecret, WebhookDelivery
from tests.app.api_v1.support import Api
from tests.app.privacy.support import add_run
from tests.support.accounts import activate_plan
from tests.support.apps import running_app
from tests.support.datasets import ready_dataset
from tests.support.runs import start
from tests.support.web import sign_up
from tests.support.webhooks import add_endpoint


@pytest.fixture
def planned(hooks_app: Flask) -> tuple[FlaskClient, int]:
    """A signed-in person on the Pro plan with a ready dataset."""
    client = hooks_app.test_client()
    assert sign_up(client).status_code == 302
    activate_plan(hooks_app, "ada@example.com", "pro")
    return client, ready_dataset(hooks_app)


def start_with(client: FlaskClient, dataset_id: int, **fields: object):  # type: ignore[no-untyped-def]
    from tests.support.web import api_headers

    body = {"dataset_id": dataset_id, "family": "tiny-sd", "preset": "character",
            "params": {"steps": 4}, **fields}  # fmt: skip
    return client.post("/api/runs", json=body, headers=api_headers(client))


def test_a_run_takes_its_webhook_and_filter_from_the_json_api(
    hooks_app: Flask, planned: tuple[FlaskClient, int]
) -> None:
    client, dataset_id = planned
    answer = start_with(
        client, dataset_id, webhook="http://127.0.0.1:9/run",
        webhook_events_filter=["completed", "start"],
    )  # fmt: skip
    assert answer.status_code == 201, answer.get_json()
    with hooks_app.app_context():
        run = db.session.get(TrainingRun, answer.get_json()["id"])
        assert (run.webhook, run.webhook_events_filter) == (
            "http://127.0.0.1:9/run", ["start", "completed"],
        )  # fmt: skip
        assert db.session.scalar(select(RunWebhookSecret).where(
            RunWebhookSecret.user_id == run.user_id)) is not None  # fmt: skip
    plain = start(client, dataset_id, steps=4)
    with hooks_app.app_context():
        assert db.session.get(TrainingRun, plain.get_json()["id"]).webhook is None


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"webhook": "ftp://127.0.0.1/run"}, "webhook", "http:// or https://"),
        ({"webhook": 12}, "webhook", "must be text"),
        ({"webhook": "http://nowhere.attune.test/"}, "webhook", "could not be found"),
        ({"webhook": "http://127.0.0.1:9/", "webhook_events_filter": ["output"]},
         "webhook_events_filter", "start, progress, completed"),
        ({"webhook": "http://127.0.0.1:9/", "webhook_events_filter": "start"},
         "webhook_events_filter", "list"),
        ({"webhook": "http://127.0.0.1:9/", "webhook_events_filter": []},
         "webhook_events_filter", "one or more"),
        ({"webhook_events_filter": ["start"]}, "webhook", "Give a webhook URL"),
    ],
)  # fmt: skip
def test_a_bad_webhook_is_a_400_with_the_field_and_reserves_nothing(
    hooks_app: Flask, planned: tuple[FlaskClient, int], fields: dict, field: str, message: str
) -> None:
    client, dataset_id = planned
    answer = start_with(client, dataset_id, **fields)
    assert answer.status_code == 400
    assert message in answer.get_json()["errors"][field]
    with hooks_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TrainingRun)) == 0
        assert not db.session.scalar(select(func.sum(QuotaPeriod.reserved_seconds)))


def test_production_settings_refuse_a_metadata_address_as_a_run_webhook(
    request: pytest.FixtureRequest,
) -> None:
    with running_app(request, "sqlite") as application:
        client = application.test_client()
        assert sign_up(client).status_code == 302
        activate_plan(application, "ada@example.com", "pro")
        answer = start_with(
            client, ready_dataset(application), webhook="https://169.254.169.254/latest/"
        )
        assert answer.status_code == 400
        assert "not a public internet address" in answer.get_json()["errors"]["webhook"]


def test_events_follow_the_filter_and_the_subscriptions(hooks_app: Flask) -> None:
    from tests.app.privacy.support import make_user

    with hooks_app.app_context():
        user_id = make_user()
        add_endpoint(user_id, "http://127.0.0.1:9/account", ("training.start",))
        add_endpoint(user_id, "http://127.0.0.1:9/off", ("training.start",), disabled=True)
        run = db.session.get(TrainingRun, add_run(user_id))
        run.webhook, run.webhook_events_filter = "http://127.0.0.1:9/run", ["completed"]
        db.session.commit()
        counts = [emit_run_event(run, kind) for kind in ("start", "progress", "completed")]
        assert counts == [1, 0, 1]
        urls = db.session.execute(
            select(WebhookDelivery.event_type, WebhookDelivery.url).order_by(WebhookDelivery.id)
        ).all()
        assert urls == [("training.start", "http://127.0.0.1:9/account"),
                        ("training.completed", "http://127.0.0.1:9/run")]  # fmt: skip
        completed = json.loads(db.session.scalars(select(WebhookDelivery.body)).all()[-1])
        run_id = run.id
        _, key = create_key(db.session.get_one(User, user_id), "receiver", "read")
    assert completed["type"] == "training.completed" and completed["timestamp"].endswith("Z")
    data = completed["data"]
    assert (data["id"], data["status"], data["progress"]["total_steps"]) == (run_id, "succeeded", 2)
    # The run exactly as /api/v1 shows it, and its links lead to /api/v1.
    api = Api(hooks_app, key)
    assert data == api.get(f"/trainings/{run_id}").get_json()
    assert data["urls"]["get"] == f"http://localhost/api/v1/trainings/{run_id}"
    assert data["files"] == {"lora": True, "comfyui": True, "checkpoints": [1], "samples": 2}
    files = api.get(data["urls"]["artifacts"].removeprefix("http://localhost/api/v1")).get_json()
    assert {f["kind"] for f in files["data"]} == {"lora", "comfyui", "checkpoint", "sample"}


def test_progress_events_are_throttled_per_run(request: pytest.FixtureRequest) -> None:
    from jobs.progress import RunReporter
    from tests.app.privacy.support import make_user
    from training.results import ProgressEvent

    settings = {"webhooks_allow_http": True, "webhooks_allow_private": True,
                "webhook_progress_interval_s": 1}  # fmt: skip
    with running_app(request, "sqlite", settings) as application, application.app_context():
        run = db.session.get(TrainingRun, add_run(make_user(), status="running"))
        run.webhook, run.total_steps = "http://127.0.0.1:9/run", 100
        db.session.commit()
        reporter = RunReporter(run, get_redis())
        for step in range(1, 41):  # a fast loop: 40 steps well within a second
            reporter.on_progress(ProgressEvent("step", step, 100, loss=0.5, eta_seconds=9.0))
        assert _progress_steps() == [1]
        time.sleep(1.05)
        reporter.on_progress(ProgressEvent("step", 41, 100, loss=0.25, eta_seconds=8.0))
        assert _progress_steps() == [1, 41]


def _progress_steps() -> list[int]:
    bodies = db.session.scalars(
        select(WebhookDelivery.body)
        .where(WebhookDelivery.event_type == "training.progress")
        .order_by(WebhookDelivery.id)
    )
    return [json.loads(body)["data"]["progress"]["step"] for body in bodies]


def test_cancelling_a_queued_run_sends_completed(
    hooks_app: Flask, planned: tuple[FlaskClient, int]
) -> None:
    client, dataset_id = planned
    answer = start_with(client, dataset_id, webhook="http://127.0.0.1:9/run")
    run_id = answer.get_json()["id"]
    from tests.support.web import csrf_token

    token = csrf_token(client.get(f"/runs/{run_id}").get_data(as_text=True))
    assert client.post(f"/runs/{run_id}/cancel", data={"csrf_token": token}).status_code == 302
    with hooks_app.app_context():
        [body] = db.session.scalars(select(WebhookDelivery.body)).all()
    event = json.loads(body)
    assert (event["type"], event["data"]["status"]) == ("training.completed", "cancelled")
