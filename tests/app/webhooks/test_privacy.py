"""Webhook data and the person's rights: the export lists endpoints without their secrets,
and erasing the account erases every webhook row."""

from __future__ import annotations

import json

from flask import Flask
from sqlalchemy import func, select

from app.accounts.models import User
from app.db_types import utcnow
from app.extensions import db
from app.privacy.erasure import erase_account
from app.privacy.exports import account_data
from app.trainings.events import emit_run_event
from app.trainings.models import TrainingRun
from app.webhooks.events import send_test_event
from app.webhooks.models import RunWebhookSecret, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks.services import ensure_run_secret
from tests.app.privacy.support import add_run, make_user
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.webhooks import add_endpoint, deliver

TABLES = (WebhookEndpoint, RunWebhookSecret, WebhookDelivery, WebhookAttempt)


def _webhook_world(user_id: int, url: str) -> None:
    endpoint = add_endpoint(user_id, url)
    run = db.session.get(TrainingRun, add_run(user_id))
    run.webhook = url
    ensure_run_secret(user_id)
    db.session.commit()
    emit_run_event(run, "completed")
    send_test_event(endpoint)


def test_the_export_lists_endpoints_and_deliveries_but_no_secret(
    hooks_app: Flask, receiver: WebhookReceiver
) -> None:
    with hooks_app.app_context():
        user_id = make_user()
        _webhook_world(user_id, receiver.url())
        ids = list(db.session.scalars(select(WebhookDelivery.id)))
    for delivery_id in ids:
        deliver(hooks_app, delivery_id)
    with hooks_app.app_context():
        data = account_data(db.session.get(User, user_id))
    [endpoint] = data["webhook_endpoints"]
    assert endpoint["url"] == receiver.url() and "secret" not in endpoint
    assert "previous_secret" not in endpoint
    assert [row.get("secret") for row in data["webhook_run_secrets"]] == [None]
    assert len(data["webhook_deliveries"]) == 3 and len(data["webhook_attempts"]) == 3
    assert "whsec_" not in json.dumps(data, default=str)


def test_erasing_the_account_erases_every_webhook_row(
    hooks_app: Flask, receiver: WebhookReceiver
) -> None:
    with hooks_app.app_context():
        ada, grace = make_user(), make_user("grace@example.com")
        for user_id in (ada, grace):
            _webhook_world(user_id, receiver.url())
        for delivery_id in list(db.session.scalars(select(WebhookDelivery.id))):
            deliver(hooks_app, delivery_id)
        db.session.get(User, ada).deletion_requested_at = utcnow()
        db.session.commit()
        assert erase_account(ada) == "deleted"
        for model in TABLES:
            owners = set(db.session.scalars(select(model.user_id)))  # type: ignore[attr-defined]
            assert owners == {grace}, model.__tablename__
        assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 3
