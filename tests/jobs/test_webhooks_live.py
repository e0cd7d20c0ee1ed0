"""A real run on a live worker tells an account endpoint and the run's own webhook that it
started, progressed and completed, in that order, each delivery signed (checked with the
standardwebhooks library)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.jobs.http_session import Person, page_token, wait_for
from tests.support.accounts import activate_plan
from tests.support.apps import DATABASES, running_app
from tests.support.live_service import LiveService, serve_with_worker
from tests.support.processes import free_port
from tests.support.webhook_receiver import Received, WebhookReceiver

SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")
# Loopback receivers over plain http need the development switches, in the web app and the
# worker alike; progress unthrottled so a 4-step run sends one progress event per step.
SETTINGS = {"webhooks_allow_http": True, "webhooks_allow_private": True,
            "webhook_progress_interval_s": 0}  # fmt: skip
WORKER_ENV = {"ATTUNE_WEBHOOKS_ALLOW_HTTP": "true", "ATTUNE_WEBHOOKS_ALLOW_PRIVATE": "true",
              "ATTUNE_WEBHOOK_PROGRESS_INTERVAL_S": "0"}  # fmt: skip


@pytest.fixture(params=DATABASES)
def hooked_service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveService]:
    """The live app and worker with the webhook development switches on."""
    port = free_port()
    overrides = {"base_url": f"http://127.0.0.1:{port}", **SETTINGS}
    with running_app(request, request.param, overrides) as app:
        yield from serve_with_worker(app, port, tmp_path, WORKER_ENV)


def revealed_secret(answer_html: str) -> str:
    """The secret a page shows once."""
    [secret] = set(SECRET.findall(answer_html))
    return secret


def add_endpoint(person: Person, url: str) -> str:
    """Add an endpoint for every training event on the webhooks page; returns its secret."""
    token = page_token(person.get("/account/webhooks").text)
    events = ["training.start", "training.progress", "training.completed"]
    answer = person.session.post(
        f"{person.base}/account/webhooks",
        data={"csrf_token": token, "url": url, "description": "CI", "event_types": events},
    )
    assert answer.status_code == 201, answer.text[-1000:]
    return revealed_secret(answer.text)


def events_of(received: list[Received], secret: str) -> list[dict[str, Any]]:
    """Every delivery verified by the standardwebhooks library, in arrival order."""
    from standardwebhooks import Webhook

    return [Webhook(secret).verify(item.body, item.headers) for item in received]


def test_a_live_run_reports_start_progress_and_completed_in_order(
    hooked_service: LiveService,
) -> None:
    account, own = WebhookReceiver(), WebhookReceiver()
    try:
        ada = Person(hooked_service, "ada@example.com")
        activate_plan(hooked_service.app, "ada@example.com")
        endpoint_secret = add_endpoint(ada, account.url("/account-hook"))
        made = ada.post_form("/account/webhooks/run-secret/rotate", {}, page="/account/webhooks")
        run_secret = revealed_secret(made.text)
        dataset_id = ada.ready_dataset(hooked_service)
        answer = ada.post_json("/api/runs", {
            "dataset_id": dataset_id, "family": "tiny-sd", "preset": "character",
            "params": {"steps": 4, "rank": 4, "resolution": 64, "sample_every": 0,
                       "checkpoint_every": 0},
            "webhook": own.url("/run-hook"),
            "webhook_events_filter": ["start", "progress", "completed"],
        })  # fmt: skip
        assert answer.status_code == 201, answer.text
        run_id = answer.json()["id"]

        def finished() -> dict[str, Any] | None:
            status = ada.run_status(run_id)
            return status if status["status"] in ("succeeded", "failed", "cancelled") else None

        assert wait_for(hooked_service, finished, 240, "training")["status"] == "succeeded"
        for receiver, secret in ((account, endpoint_secret), (own, run_secret)):
            received = _all_delivered(hooked_service, receiver)
            events = events_of(received, secret)
            _assert_the_story(events, run_id)
        page = ada.get("/account/webhooks").text
        assert "training.completed" in page and "succeeded" in page
    finally:
        account.stop()
        own.stop()


def _all_delivered(service: LiveService, receiver: WebhookReceiver) -> list[Received]:
    def done() -> list[Received] | None:
        bodies = [item.body for item in receiver.received]
        return receiver.received if any(b"training.completed" in b for b in bodies) else None

    return wait_for(service, done, 90, "webhook deliveries")


def _assert_the_story(events: list[dict[str, Any]], run_id: int) -> None:
    types = [event["type"] for event in events]
    assert types[0] == "training.start" and types[-1] == "training.completed", types
    progress = [event for event in events if event["type"] == "training.progress"]
    assert types == ["training.start"] + ["training.progress"] * len(progress) + [
        "training.completed"
    ]
    assert [event["data"]["progress"]["step"] for event in progress] == [1, 2, 3, 4]
    assert all(event["data"]["id"] == run_id for event in events)
    assert events[0]["data"]["status"] == "running"
    completed = events[-1]["data"]  # the /api/v1 shape of the run
    assert completed["status"] == "succeeded" and completed["progress"]["step"] == 4
    assert completed["files"]["lora"] and completed["gpu_seconds"]["used"] > 0
    assert completed["urls"]["artifacts"].endswith(f"/api/v1/trainings/{run_id}/artifacts")
