"""What each plan costs, as the pricing page shows it: the plan's price, and what overage costs.

With Stripe billing the prices are Stripe's (prices live there; a plan names its price ids),
read once per app process and price every few minutes; with development billing the plan's
price is the plan configuration's `price_amount`, `price_currency` and `price_interval`, and
overage (never charged there) has no price to show.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeVar

from flask import current_app

from app.billing import stripe_gateway as gateway
from app.billing.services import uses_stripe
from app.plans import Plan

PRICE_CACHE_S = 600.0
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}
# Currencies Stripe counts in whole units (https://docs.stripe.com/currencies#zero-decimal).
ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx",
                "vnd", "vuv", "xaf", "xof", "xpf"}  # fmt: skip


Price = TypeVar("Price")


def money(amount: int | Decimal, currency: str) -> str:
    """An amount in the currency's smallest unit as people write it: "$39", "$39.50", "€12",
    "1,200 JPY"; a fraction of the smallest unit is rounded to it."""
    currency = currency.lower()
    whole = Decimal(amount).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    value = whole if currency in ZERO_DECIMAL else whole / 100
    number = f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"


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
        return money(self.amount, self.currency)

    @property
    def per(self) -> str:
        """ "per month", "per 3 months", "per year"."""
        if self.interval_count == 1:
            return f"per {self.interval}"
        return f"per {self.interval_count} {self.interval}s"


@dataclass(frozen=True)
class OveragePrice:
    """A metered price per GPU second (the unit the meter counts), in the smallest unit."""

    per_second: Decimal
    currency: str

    @property
    def per_hour_text(self) -> str:
        """What an hour of overage costs, as people write it: "$2.40"."""
        return money(self.per_second * 3600, self.currency)


def plan_price(plan: Plan) -> PlanPrice | None:
    """The plan's price, or None when it cannot be told now (no price set, Stripe unreachable)."""
    if not uses_stripe():
        if not plan.price_amount:
            return None
        return PlanPrice(plan.price_amount, plan.price_currency, plan.price_interval)
    if not plan.stripe_price_id:
        return None
    return _stripe_price(plan.stripe_price_id, _from_stripe)


def overage_price(plan: Plan) -> OveragePrice | None:
    """What overage costs on the plan, from its metered Stripe price; None when the plan has
    no overage, billing is development billing, or Stripe cannot tell it now."""
    if not (plan.overage and plan.overage_price_id and uses_stripe()):
        return None
    return _stripe_price(plan.overage_price_id, _metered_from_stripe)


def _stripe_price(price_id: str, parse: Callable[[dict[str, Any]], Price | None]) -> Price | None:
    cache: dict[str, tuple[float, Any]] = current_app.extensions.setdefault("attune.prices", {})
    cached = cache.get(price_id)
    if cached is not None and time.monotonic() - cached[0] < PRICE_CACHE_S:
        return cached[1]
    try:
        price = parse(gateway.retrieve_price(price_id))
    except gateway.GatewayError:
        return cached[1] if cached else None  # an older answer beats none; a failure is not kept
    if price is not None:
        cache[price_id] = (time.monotonic(), price)
    return price


def _metered_from_stripe(data: dict[str, Any]) -> OveragePrice | None:
    raw = data.get("unit_amount_decimal")
    if raw is None:
        raw = data.get("unit_amount")
    if raw is None or not data.get("currency"):
        return None  # e.g. a tiered price: nothing one number can say
    try:
        per_second = Decimal(str(raw))
    except InvalidOperation:
        return None
    return OveragePrice(per_second, str(data["currency"])) if per_second.is_finite() else None


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
