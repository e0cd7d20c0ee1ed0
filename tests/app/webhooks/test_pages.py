"""The webhooks page under the account menu: add (secret shown once), rotate, test, off/on,
delete, and nobody else's endpoint."""

from __future__ import annotations

import base64
import re

from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import func, select

from app.extensions import db, get_redis
from app.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.support.web import csrf_token, sign_up

SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")


def signed_in(application: Flask, email: str = "ada@example.com") -> FlaskClient:
    """A fresh account, signed in."""
    client = application.test_client()
    assert sign_up(client, email=email).status_code == 302
    return client


def add(client: FlaskClient, url: str, events: list[str] | None = None, **extra: str):  # type: ignore[no-untyped-def]
    page = client.get("/account/webhooks").get_data(as_text=True)
    form = {"csrf_token": csrf_token(page), "url": url, "description": "CI", **extra}
    form["event_types"] = events if events is not None else ["training.completed"]  # type: ignore[assignment]
    return client.post("/account/webhooks", data=form)


def post(client: FlaskClient, path: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get("/account/webhooks").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token})


def test_the_account_menu_leads_to_the_page(hooks_app: Flask) -> None:
    client = signed_in(hooks_app)
    assert 'href="/account/webhooks"' in client.get("/dashboard").get_data(as_text=True)
    page = client.get("/account/webhooks").get_data(as_text=True)
    assert "<h1>Webhooks</h1>" in page and "No endpoints yet" in page


def test_adding_an_endpoint_shows_its_secret_once(hooks_app: Flask) -> None:
    client = signed_in(hooks_app)
    answer = add(client, "http://127.0.0.1:9/hook", ["training.start", "training.completed"])
    assert answer.status_code == 201
    assert answer.headers["Cache-Control"] == "no-store"
    html = answer.get_data(as_text=True)
    [secret] = set(SECRET.findall(html))
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 32
    with hooks_app.app_context():
        endpoint = db.session.scalars(select(WebhookEndpoint)).one()
        assert endpoint.secret == secret
        assert endpoint.event_types == ["training.start", "training.completed"]
        endpoint_id = endpoint.id
    for path in ("/account/webhooks", f"/account/webhooks/{endpoint_id}"):
        again = client.get(path).get_data(as_text=True)
        assert "http://127.0.0.1:9/hook" in again and "whsec_" not in again  # never again


def test_bad_input_gets_a_message_and_saves_nothing(hooks_app: Flask) -> None:
    client = signed_in(hooks_app)
    cases = [
        ("ftp://127.0.0.1/hook", ["training.start"], "Use an http:// or https:// URL"),
        ("http://127.0.0.1/hook", [], "Choose one or more of"),
        ("http://127.0.0.1/hook", ["training.everything"], "Choose one or more of"),
        ("http://nowhere.attune.test/hook", ["training.start"], "could not be found"),
        ("", ["training.start"], "This field is required"),
    ]
    for url, events, message in cases:
        answer = add(client, url, events)
        assert answer.status_code == 422, url
        assert message in answer.get_data(as_text=True), (url, events)
    too_long = add(client, "http://127.0.0.1/hook", description="x" * 201)
    assert too_long.status_code == 422
    with hooks_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0


def test_rotate_test_off_on_and_delete(hooks_app: Flask) -> None:
    client = signed_in(hooks_app)
    first = SECRET.findall(add(client, "http://127.0.0.1:9/hook").get_data(as_text=True))[0]
    with hooks_app.app_context():
        endpoint_id = db.session.scalar(select(WebhookEndpoint.id))
    base = f"/account/webhooks/{endpoint_id}"
    rotated = post(client, f"{base}/rotate")
    assert rotated.headers["Cache-Control"] == "no-store"
    [second] = set(SECRET.findall(rotated.get_data(as_text=True)))
    assert second != first
    assert "also signs until" in client.get(base).get_data(as_text=True)
    with hooks_app.app_context():
        endpoint = db.session.get(WebhookEndpoint, endpoint_id)
        assert (endpoint.secret, endpoint.previous_secret) == (second, first)

    assert post(client, f"{base}/test").status_code == 302
    with hooks_app.app_context():
        delivery = db.session.scalars(select(WebhookDelivery)).one()
        assert (delivery.event_type, delivery.status) == ("test", "pending")
        assert f"webhook-{delivery.id}-1" in Queue("cpu", connection=get_redis()).job_ids
    assert "test" in client.get(base).get_data(as_text=True)

    post(client, f"{base}/disable")
    shown = client.get(base).get_data(as_text=True)
    assert "disabled" in shown and "Send a test event" not in shown
    refused = post(client, f"{base}/test")
    assert refused.status_code == 302
    assert "Turn the endpoint on" in client.get(base).get_data(as_text=True)
    post(client, f"{base}/enable")
    assert "Send a test event" in client.get(base).get_data(as_text=True)

    assert post(client, f"{base}/delete").status_code == 302
    assert client.get(base).status_code == 404
    with hooks_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_someone_elses_endpoint_is_a_404(hooks_app: Flask) -> None:
    owner = signed_in(hooks_app)
    add(owner, "http://127.0.0.1:9/hook")
    with hooks_app.app_context():
        endpoint_id = db.session.scalar(select(WebhookEndpoint.id))
    eve = signed_in(hooks_app, "eve@example.com")
    base = f"/account/webhooks/{endpoint_id}"
    assert eve.get(base).status_code == 404
    for action in ("rotate", "test", "disable", "enable", "delete"):
        assert post(eve, f"{base}/{action}").status_code == 404, action
    assert "127.0.0.1:9" not in eve.get("/account/webhooks").get_data(as_text=True)
    with hooks_app.app_context():
        endpoint = db.session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None and not endpoint.disabled and endpoint.previous_secret is None


def test_the_per_run_secret_is_created_and_replaced_on_the_page(hooks_app: Flask) -> None:
    client = signed_in(hooks_app)
    assert "Create the per-run secret" in client.get("/account/webhooks").get_data(as_text=True)
    made = post(client, "/account/webhooks/run-secret/rotate")
    [first] = set(SECRET.findall(made.get_data(as_text=True)))
    again = client.get("/account/webhooks").get_data(as_text=True)
    assert "Replace the per-run secret" in again and "whsec_" not in again
    [second] = set(SECRET.findall(post(client, "/account/webhooks/run-secret/rotate").text))
    assert second != first


def test_an_account_has_at_most_twenty_endpoints(hooks_app: Flask) -> None:
    client = signed_in(hooks_app)
    for number in range(20):
        assert add(client, f"http://127.0.0.1:9/hook/{number}").status_code == 201
    refused = add(client, "http://127.0.0.1:9/hook/21")
    assert refused.status_code == 422
    assert "at most 20 webhook endpoints" in refused.get_data(as_text=True)


def test_test_events_are_limited_per_account(hooks_app: Flask) -> None:
    client = signed_in(hooks_app)
    add(client, "http://127.0.0.1:9/hook")
    with hooks_app.app_context():
        endpoint_id = db.session.scalar(select(WebhookEndpoint.id))
    token = csrf_token(client.get("/account/webhooks").get_data(as_text=True))
    path = f"/account/webhooks/{endpoint_id}/test"
    statuses = [client.post(path, data={"csrf_token": token}).status_code for _ in range(31)]
    assert statuses[:30] == [302] * 30 and statuses[30] == 429
    with hooks_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 30
