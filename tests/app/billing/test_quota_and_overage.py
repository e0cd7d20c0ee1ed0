"""GPU quota per paid period, and overage reported to Stripe's meter exactly once."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.billing import overage
from app.billing.models import GpuUsage
from app.billing.services import current_subscription, standing
from app.billing.stripe_gateway import GatewayError
from app.extensions import db
from tests.support.billing import add_usage, deliver_all, person, subscribe
from tests.support.stripe_server import PERIOD_S, StripeServer

HOUR = 3600


def test_quota_resets_when_invoice_paid_opens_a_new_period_and_not_before(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    start = int(time.time()) - PERIOD_S + HOUR  # the first period ends in an hour
    sub_id = subscribe(stripe_client, stripe_server, "hobby", period_start=start)
    old_start = datetime.fromtimestamp(start, UTC)
    new_start = old_start + timedelta(seconds=PERIOD_S)
    with stripe_app.app_context():
        user = person()
        add_usage(user, 5 * HOUR, old_start + timedelta(days=2))
        account = standing(user)
        allowed, reason = account.can_start, account.reason
        assert not allowed and "used all 5 GPU-hours" in reason

    updated, paid = stripe_server.renew(sub_id)
    deliver_all(stripe_client, [updated])
    later = new_start + timedelta(hours=2)  # the new period has begun, but is not paid yet
    with stripe_app.app_context():
        user = person()
        quota = standing(user, later).quota
        assert quota.period_start == old_start and quota.used_s == 5 * HOUR
        assert quota.left_s == 0 and not standing(user, later).can_start

    deliver_all(stripe_client, [paid])
    with stripe_app.app_context():
        user = person()
        quota = standing(user, later).quota
        assert quota.period_start == new_start
        assert (quota.used_s, quota.left_s) == (0, 5 * HOUR)
        assert standing(user, later).reason == ""
        add_usage(user, 1800, new_start + timedelta(hours=1))
        assert standing(user, later).quota.left_s == 4.5 * HOUR
        assert standing(user, later).quota.with_reserved(HOUR).left_s == 3.5 * HOUR


def test_an_invoice_paid_late_opens_only_the_period_it_paid_for(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    start = int(time.time()) - 2 * PERIOD_S + HOUR
    sub_id = subscribe(stripe_client, stripe_server, "pro", period_start=start)
    periods = [datetime.fromtimestamp(start + n * PERIOD_S, UTC) for n in range(3)]

    def period_start() -> datetime | None:
        with stripe_app.app_context():
            subscription = current_subscription(person())
            assert subscription is not None
            return subscription.current_period_start

    # Two renewals fail: Stripe moves the subscription on, our quota stays on the paid period.
    second = stripe_server.renew(sub_id, paid=False)
    third = stripe_server.renew(sub_id, paid=False)
    deliver_all(stripe_client, second + third)
    assert period_start() == periods[0]
    # The second period's invoice is paid now: that period opens, not the third (still unpaid).
    deliver_all(stripe_client, stripe_server.pay(second[-1]["data"]["object"]["id"]))
    assert period_start() == periods[1]
    deliver_all(stripe_client, stripe_server.pay(third[-1]["data"]["object"]["id"]))
    assert period_start() == periods[2]
    # A stale copy of the older payment arriving last changes nothing.
    deliver_all(stripe_client, stripe_server.pay(second[-1]["data"]["object"]["id"]))
    assert period_start() == periods[2]


def test_a_failed_renewal_keeps_the_old_quota_and_access_for_the_grace_period(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    start = int(time.time()) - PERIOD_S + HOUR
    sub_id = subscribe(stripe_client, stripe_server, "pro", period_start=start)
    deliver_all(stripe_client, stripe_server.renew(sub_id, paid=False))
    old_end = datetime.fromtimestamp(start + PERIOD_S, UTC)
    with stripe_app.app_context():
        user = person()
        subscription = current_subscription(user)
        assert subscription is not None and subscription.status == "past_due"
        assert subscription.current_period_end == old_end
        assert standing(user, old_end + timedelta(days=6)).can_start
        account = standing(user, old_end + timedelta(days=8))
        allowed, reason = account.can_start, account.reason
        assert not allowed and "payment failed" in reason.lower()
    page = stripe_client.get("/billing").get_data(as_text=True)
    assert 'id="subscription-past-due"' in page


def _row(app: Flask, seconds: float, after: timedelta, key: str) -> tuple[int, str]:
    """A ledger row `after` the period's start; returns its id and the Stripe customer."""
    with app.app_context():
        user = person()
        subscription = current_subscription(user)
        assert subscription is not None and subscription.current_period_start is not None
        row = add_usage(user, seconds, subscription.current_period_start + after, key=key)
        return row.id, str(subscription.stripe_customer_id)


# Pro allows 20 h: a first run inside the quota, then one that goes 2000 s beyond it.
FIRST = (19.5 * HOUR, timedelta(minutes=5), "run-1-seg-0")
SECOND = (2000 + 0.5 * HOUR, timedelta(hours=20), "run-2-seg-0")


def test_meter_events_retried_after_a_timeout_are_billed_once(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    subscribe(stripe_client, stripe_server, "pro")
    first, customer = _row(stripe_app, *FIRST)
    with stripe_app.app_context():
        assert overage.report_overage(first) == "within quota"
    assert stripe_server.calls("POST", "/v1/billing/meter_events") == []
    second, _ = _row(stripe_app, *SECOND)
    with stripe_app.app_context():
        # Stripe records the event but answers too late, twice (the client's own retry too).
        stripe_server.fail_next("POST", "/v1/billing/meter_events", delay=1.5)
        stripe_server.fail_next("POST", "/v1/billing/meter_events", delay=1.5)
        with pytest.raises(GatewayError):
            overage.report_overage(second)
        db.session.rollback()
        assert db.session.get(GpuUsage, second).reported_at is None
        assert stripe_server.meter_total(customer) == 2000

        # The job is retried later, after Stripe forgot the idempotency key: the event's
        # identifier (the ledger row's segment_key) still keeps it from counting twice.
        stripe_server.idempotent.clear()
        assert overage.report_overage(second) == "overage 2000 s"
        assert overage.report_overage(second) == "nothing to do"
        assert overage.pending_overage_ids() == []
        row = db.session.get(GpuUsage, second)
        assert row.reported_at is not None and row.overage_s == 2000
    calls = stripe_server.calls("POST", "/v1/billing/meter_events")
    assert len(calls) == 3
    assert {call.params["identifier"] for call in calls} == {"run-2-seg-0"}
    assert calls[0].params["event_name"] == "attune_gpu_seconds"
    assert stripe_server.meter_total(customer) == 2000


def test_overage_shares_add_up_whatever_order_rows_are_settled_in(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    subscribe(stripe_client, stripe_server, "pro")
    first, customer = _row(stripe_app, *FIRST)
    second, _ = _row(stripe_app, *SECOND)
    with stripe_app.app_context():
        # Written together, settled in any order: one of them carries the 2000 s.
        shares = [overage.report_overage(second), overage.report_overage(first)]
        assert sorted(shares) == ["overage 2000 s", "within quota"]
        assert overage.pending_overage_ids() == []
    assert stripe_server.meter_total(customer) == 2000


def test_a_plan_without_overage_reports_nothing_and_stops_new_runs(
    stripe_app: Flask, stripe_client: FlaskClient, stripe_server: StripeServer
) -> None:
    subscribe(stripe_client, stripe_server, "hobby")
    with stripe_app.app_context():
        user = person()
        subscription = current_subscription(user)
        assert subscription is not None and subscription.current_period_start is not None
        row = add_usage(user, 6 * HOUR, subscription.current_period_start + timedelta(hours=1))
        assert overage.report_overage(row.id) == "within quota"
        assert not standing(user).can_start
    assert stripe_server.calls("POST", "/v1/billing/meter_events") == []
    page = stripe_client.get("/billing").get_data(as_text=True)
    assert 'id="quota-overage"' in page and "billed as overage" not in page


def test_the_sweeper_settles_pending_rows_and_waits_out_a_stripe_outage(
    stripe_app: Flask,
    stripe_client: FlaskClient,
    stripe_server: StripeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jobs import billing as billing_jobs
    from jobs import context

    monkeypatch.setattr(context, "_app", stripe_app)  # the job runs inside this test's app
    monkeypatch.setattr(context, "_app_pid", os.getpid())
    subscribe(stripe_client, stripe_server, "pro")
    _, customer = _row(stripe_app, *FIRST)
    _row(stripe_app, *SECOND)
    for _ in range(2):  # the first call and the client's retry both fail
        stripe_server.fail_next("POST", "/v1/billing/meter_events", kind="error")
    # Written together, the older row carries the overage; Stripe is down, so nothing settles.
    assert billing_jobs.report_pending_overage() == 0, "stops at the outage, keeps the rows"
    assert stripe_server.meter_total(customer) == 0
    assert billing_jobs.report_pending_overage() == 2
    assert billing_jobs.report_pending_overage() == 0
    assert stripe_server.meter_total(customer) == 2000
