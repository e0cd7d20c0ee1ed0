"""Overage: GPU time beyond a plan's allowance, sent to Stripe's meter exactly once per row.

Each charged ledger row is settled once: its share of the period's overage (possibly none)
is reported with the row's segment_key as the meter event identifier, then reported_at is
set. A share is what the period's total overage still lacks after the rows settled before,
so the amounts add up to the period's overage whatever order rows are written or settled in.
"""

from __future__ import annotations

import logging
from datetime import datetime

from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import User
from app.billing import stripe_gateway as gateway
from app.billing.actions import customer_id
from app.billing.models import GpuUsage, Subscription
from app.billing.services import current_subscription, get_plan, uses_stripe
from app.billing.usage import period_settled_overage, period_used_seconds
from app.db_types import utcnow
from app.extensions import db
from app.plans import Plan
from app.queues import CPU_QUEUE, enqueue_task

log = logging.getLogger(__name__)
REPORT_TIMEOUT_S = 120
RETRY_INTERVALS_S = [30, 120, 600, 1800, 3600]


def enqueue_overage_report(usage_id: int) -> None:
    """Queue jobs.billing.report_overage for a new ledger row (the sweeper catches misses)."""
    enqueue_task(
        "jobs.billing.report_overage",
        usage_id,
        queue=CPU_QUEUE,
        timeout_s=REPORT_TIMEOUT_S,
        job_id=f"overage-{usage_id}",
        retry=Retry(max=len(RETRY_INTERVALS_S), interval=RETRY_INTERVALS_S),
    )


def record_gpu_usage(
    user_id: int,
    run_id: int | None,
    segment_key: str,
    kind: str,
    seconds: float,
    charged: bool,
    started_at: datetime,
) -> bool:
    """Write one metered segment once (its segment_key is unique) and queue its overage report.

    Training attempts and try-it renders both meter through this. Returns False when the
    segment was already recorded, so a retried job never counts twice.
    """
    usage = GpuUsage(
        user_id=user_id,
        run_id=run_id,
        segment_key=segment_key,
        kind=kind,
        gpu_seconds=round(seconds, 3),
        charged=charged,
        started_at=started_at,
        ended_at=utcnow(),
    )
    db.session.add(usage)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    if charged:
        try:
            enqueue_overage_report(usage.id)
        except RedisError:
            log.warning("usage %s: overage report not queued; the sweep will report it", usage.id)
    return True


def pending_overage_ids(limit: int = 200) -> list[int]:
    """Charged ledger rows not settled yet, oldest first."""
    query = (
        select(GpuUsage.id)
        .where(GpuUsage.reported_at.is_(None), GpuUsage.charged.is_(True))
        .order_by(GpuUsage.started_at, GpuUsage.id)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def report_overage(usage_id: int, now: datetime | None = None) -> str:
    """Settle one ledger row; GatewayError (Stripe down) leaves it pending for a retry."""
    row = db.session.get(GpuUsage, usage_id)
    if row is None or row.reported_at is not None or not row.charged:
        return "nothing to do"
    user = db.session.get(User, row.user_id)
    subscription = current_subscription(user) if user else None
    if subscription is not None:
        # Serialise settlements per person (PostgreSQL), so two workers cannot both bill a gap.
        db.session.scalar(
            select(Subscription.id).where(Subscription.id == subscription.id).with_for_update()
        )
        db.session.refresh(row)
        if row.reported_at is not None:
            return "nothing to do"
    plan = get_plan(subscription.plan) if subscription else None
    seconds = _share(row, subscription, plan) if subscription and plan else 0
    if seconds and uses_stripe():
        assert subscription is not None and user is not None
        customer = subscription.stripe_customer_id or customer_id(user)
        if customer is None:
            log.error("usage %s: overage of user %s has no Stripe customer", row.id, user.id)
            db.session.rollback()
            return "no customer"
        gateway.report_meter_event(customer, seconds, row.segment_key, row.started_at)
    row.overage_s, row.reported_at = float(seconds), now or utcnow()
    db.session.commit()
    return f"overage {seconds} s" if seconds else "within quota"


def _share(row: GpuUsage, subscription: Subscription, plan: Plan) -> int:
    """Whole seconds of this row's GPU time that lie beyond the allowance of its period."""
    start, until = subscription.current_period_start, None
    if not plan.overage or start is None:
        return 0
    if row.started_at < start:
        start, until = subscription.previous_period_start, start
        if start is None or row.started_at < start:
            log.warning("usage %s is older than the previous period; not billed", row.id)
            return 0
    total = period_used_seconds(row.user_id, start, until)
    settled = period_settled_overage(row.user_id, start, until)
    missing = max(0.0, total - plan.gpu_seconds) - settled
    return max(0, round(min(row.gpu_seconds, missing)))
