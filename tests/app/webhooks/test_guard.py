"""The guard in the real delivery path: production settings refuse loopback, metadata and
private addresses when saving and when sending; the connection goes to the checked address
with the URL's name in the Host header and in TLS."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extensions import db
from app.webhooks.events import send_test_event
from app.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.app.privacy.support import make_user
from tests.support.apps import running_app
from tests.support.web import csrf_token, sign_up
from tests.support.webhook_receiver import WebhookReceiver, self_signed_certificate
from tests.support.webhooks import DEVELOPMENT, add_endpoint, attempts_of, deliver, verified

REFUSED_URLS = [
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.1/hook",
    "https://127.0.0.1/hook",
    "https://localhost/hook",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_production_settings_refuse_such_urls_on_the_page(
    app: Flask, signed_in: FlaskClient, url: str
) -> None:
    page = signed_in.get("/account/webhooks").get_data(as_text=True)
    answer = signed_in.post(
        "/account/webhooks",
        data={"csrf_token": csrf_token(page), "url": url, "event_types": ["training.completed"]},
    )
    assert answer.status_code == 422
    assert "not a public internet address" in answer.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0


def test_production_settings_send_nothing_to_such_addresses(app: Flask) -> None:
    # Saved while the switches were on (or before DNS changed): the send-time check decides.
    with app.app_context():
        user_id = make_user()
        deliveries = [send_test_event(add_endpoint(user_id, url)).id for url in REFUSED_URLS]
    assert [deliver(app, d) for d in deliveries] == ["failed"] * len(REFUSED_URLS)
    with app.app_context():
        for delivery_id in deliveries:
            [(number, code, error)] = attempts_of(delivery_id)
            assert (number, code) == (1, None)
            assert "not a public internet address" in (error or "")
            delivery = db.session.get(WebhookDelivery, delivery_id)
            assert delivery.status == "failed" and delivery.next_attempt_at is None


def test_a_listening_loopback_receiver_gets_nothing_without_the_private_switch(
    request: pytest.FixtureRequest, receiver: WebhookReceiver
) -> None:
    # Plain http allowed, private addresses not: were the guard missing, these would arrive.
    with running_app(request, "sqlite", {"webhooks_allow_http": True}) as application:
        with application.app_context():
            user_id = make_user()
            urls = [receiver.url(), receiver.url(host="localhost")]
            deliveries = [send_test_event(add_endpoint(user_id, url)).id for url in urls]
        assert [deliver(application, d) for d in deliveries] == ["failed", "failed"]
    assert receiver.received == []


def test_the_request_goes_to_the_checked_address_with_the_name_as_host(
    hooks_app: Flask, receiver: WebhookReceiver
) -> None:
    with hooks_app.app_context():
        delivery_id = send_test_event(
            add_endpoint(make_user(), receiver.url("/in?source=attune", host="localhost"))
        ).id
    assert deliver(hooks_app, delivery_id) == "succeeded"
    [request] = receiver.received
    assert request.headers["host"] == f"localhost:{receiver.port}"
    assert request.path == "/in?source=attune"
    assert request.headers["user-agent"].startswith("Attune-Webhooks/")


def test_https_is_verified_for_the_url_name_while_connecting_to_its_address(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    good = self_signed_certificate(tmp_path, "localhost")
    wrong = self_signed_certificate(tmp_path, "other.attune.test")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(good[0].read_bytes() + wrong[0].read_bytes())
    settings = {"webhooks_allow_private": True, "webhooks_ca_bundle": str(bundle),
                "webhook_retry_schedule_s": (0,)}  # fmt: skip
    receivers = [WebhookReceiver(certificate=good), WebhookReceiver(certificate=wrong)]
    try:
        with running_app(request, "sqlite", settings) as application:
            with application.app_context():
                user_id = make_user()
                endpoints = [
                    add_endpoint(user_id, r.url(host="localhost", scheme="https"))
                    for r in receivers
                ]
                secret = endpoints[0].secret
                sent = [send_test_event(endpoint).id for endpoint in endpoints]
            assert deliver(application, sent[0]) == "succeeded"
            assert verified(receivers[0].received[0], secret)["type"] == "test"
            # A certificate for another name is refused, though the address is the same.
            assert deliver(application, sent[1]) == "pending"
            assert receivers[1].received == []
            with application.app_context():
                [(_, code, error)] = attempts_of(sent[1])
            assert code is None and (error or "").startswith("TLS failed")
    finally:
        for receiver in receivers:
            receiver.stop()


def test_plain_http_is_refused_without_the_development_switch(
    request: pytest.FixtureRequest, receiver: WebhookReceiver
) -> None:
    settings = {**DEVELOPMENT, "webhooks_allow_http": False}
    with running_app(request, "sqlite", settings) as application:
        client = application.test_client()
        assert sign_up(client).status_code == 302
        page = client.get("/account/webhooks").get_data(as_text=True)
        answer = client.post(
            "/account/webhooks",
            data={"csrf_token": csrf_token(page), "url": receiver.url(),
                  "event_types": ["training.start"]},
        )  # fmt: skip
        assert answer.status_code == 422
        assert "only sent over https" in answer.get_data(as_text=True)
