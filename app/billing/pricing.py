"""What each plan costs, as the pricing page shows it.

With Stripe billing the price is Stripe's (prices live there; a plan names its price id), read
once per app process and price every few minutes; with development billing it is the plan
configuration's `price_amount`, `price_currency` and `price_interval`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flask import current_app

from app.billing import stripe_gateway as gateway
from app.billing.services import uses_stripe
from app.plans import Plan

PRICE_CACHE_S = 600.0
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}
# Currencies Stripe counts in whole units (https://docs.stripe.com/currencies#zero-decimal).
ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx",
                "vnd", "vuv", "xaf", "xof", "xpf"}  # fmt: skip


@dataclass(frozen=True)
class PlanPrice:
    """A recurring price: an amount in the currency's smallest unit, per interval."""

    amount: int
    currency: str
    interval: str = "month"
    interval_count: int = 1

    @property
    def amount_text(self) -> str:
        """The amount as people write it: "$39", "$39.50", "€12", "1,200 JPY"."""
        currency = self.currency.lower()
        value = self.amount if currency in ZERO_DECIMAL else self.amount / 100
        number = f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
        symbol = SYMBOLS.get(currency)
        return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"

    @property
    def per(self) -> str:
        """ "per month", "per 3 months", "per year"."""
        if self.interval_count == 1:
            return f"per {self.interval}"
        return f"per {self.interval_count} {self.interval}s"


def plan_price(plan: Plan) -> PlanPrice | None:
    """The plan's price, or None when it cannot be told now (no price set, Stripe unreachable)."""
    if not uses_stripe():
        if not plan.price_amount:
            return None
        return PlanPrice(plan.price_amount, plan.price_currency, plan.price_interval)
    if not plan.stripe_price_id:
        return None
    cache: dict[str, tuple[float, PlanPrice]] = current_app.extensions.setdefault(
        "attune.prices", {}
    )
    cached = cache.get(plan.stripe_price_id)
    if cached is not None and time.monotonic() - cached[0] < PRICE_CACHE_S:
        return cached[1]
    try:
        price = _from_stripe(gateway.retrieve_price(plan.stripe_price_id))
    except gateway.GatewayError:
        return cached[1] if cached else None  # an older answer beats none; a failure is not kept
    if price is not None:
        cache[plan.stripe_price_id] = (time.monotonic(), price)
    return price


def _from_stripe(data: dict[str, Any]) -> PlanPrice | None:
    amount, recurring = data.get("unit_amount"), data.get("recurring") or {}
    if not isinstance(amount, int) or not data.get("currency"):
        return None  # e.g. a tiered price: nothing one number can say
    return PlanPrice(
        amount,
        str(data["currency"]),
        str(recurring.get("interval") or "month"),
        int(recurring.get("interval_count") or 1),
    )
