"""The rules other features rely on: deletion dates, access, plans and billing settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.billing.deletion_dates import schedule_for
from app.billing.models import Subscription
from app.billing.services import scheduled_end
from app.config import ConfigurationError, load_settings
from app.plans import DEFAULT_PLANS, parse_plans, plan_for_prices

END = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _subscription(**values: object) -> Subscription:
    defaults: dict[str, object] = {
        "plan": "pro", "status": "active", "cancel_at_period_end": False,
        "current_period_start": END - timedelta(days=30), "current_period_end": END,
    }  # fmt: skip
    return Subscription(user_id=1, **{**defaults, **values})


def test_deletion_dates_follow_the_end_media_30_days_loras_90_days() -> None:
    created, now = END - timedelta(days=200), END - timedelta(days=20)
    assert schedule_for(created, [_subscription()], now).is_kept, "a renewing plan deletes nothing"
    never = schedule_for(created, [], now)
    assert (never.reason, never.media_at) == ("no_subscription", created + timedelta(days=30))

    scheduled = schedule_for(created, [_subscription(cancel_at_period_end=True)], now)
    assert (scheduled.reason, scheduled.since) == ("subscription_ends", END)
    assert (scheduled.media_at, scheduled.loras_at) == (
        END + timedelta(days=30),
        END + timedelta(days=90),
    )
    assert not scheduled.is_due, "nothing is deleted before the end"
    cancel_at = END - timedelta(days=10)
    assert scheduled_end(_subscription(cancel_at=cancel_at)) == cancel_at

    # Once ended, Stripe's ended_at counts, not the click on "cancel" nor the period end.
    ended_at = END - timedelta(days=3)
    ended = schedule_for(created, [_subscription(status="canceled", ended_at=ended_at)], END)
    assert ended.is_due and ended.media_at == ended_at + timedelta(days=30)
    assert ended.loras_at == ended_at + timedelta(days=90)


def test_plans_default_to_the_product_table_and_take_operator_overrides() -> None:
    hobby, pro, studio = DEFAULT_PLANS
    assert (hobby.gpu_hours, hobby.storage_gb, hobby.concurrent_runs, hobby.overage) == (
        5, 20, 1, False,
    )  # fmt: skip
    assert (pro.gpu_hours, pro.media_kinds, pro.overage) == (20, "images + video", True)
    assert (studio.gpu_hours, studio.storage_gb, studio.priority) == (75, 500, True)
    custom = parse_plans(
        '[{"name": "pro", "gpu_hours": 30, "stripe_price_id": "price_p", '
        '"overage_price_id": "price_o"}]'
    )
    assert (custom[0].gpu_hours, custom[0].storage_gb, custom[0].stripe_price_id) == (
        30, 100, "price_p",
    )  # fmt: skip
    assert plan_for_prices(custom, ["price_o", "price_p"]) == custom[0]
    assert plan_for_prices(custom, ["price_o"]) is None


def test_billing_mode_follows_the_stripe_key_and_production_refuses_dev_billing(
    tmp_path: Path,
) -> None:
    base = {"ATTUNE_INSTANCE_PATH": str(tmp_path)}
    assert load_settings(base).billing_mode == "dev"
    keys = {"ATTUNE_STRIPE_SECRET_KEY": "sk_live_x", "ATTUNE_STRIPE_WEBHOOK_SECRET": "whsec_x"}
    assert load_settings({**base, **keys}).billing_mode == "stripe"
    with pytest.raises(ConfigurationError, match="ATTUNE_STRIPE_WEBHOOK_SECRET"):
        load_settings({**base, "ATTUNE_STRIPE_SECRET_KEY": "sk_live_x"})
    with pytest.raises(ConfigurationError, match="ATTUNE_BILLING_MODE"):
        load_settings({**base, "ATTUNE_BILLING_MODE": "free"})
    production = {**base, "ATTUNE_ENV": "production"}
    with pytest.raises(ConfigurationError, match="development billing"):
        load_settings(production)
    with pytest.raises(ConfigurationError, match="development billing"):
        load_settings({**production, **keys, "ATTUNE_BILLING_MODE": "dev"})
    # (tests/app/test_config.py starts production with the Stripe keys and real services.)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0 min"), (0.2, "1 s"), (20.4, "20 s"), (59.4, "59 s"), (59.6, "1 min"),
     (2700, "45 min"), (3599, "60 min"), (9000, "2.5 h")],
)  # fmt: skip
def test_gpu_time_reads_as_people_expect(seconds: float, shown: str) -> None:
    from app.billing.usage import format_gpu_time

    assert format_gpu_time(seconds) == shown
