"""Plans: defaults from PRODUCT.md, overridable by operators through ATTUNE_PLANS_JSON.

The settings parse them (app.config), so they sit below every feature package, billing too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from catalogue.families import FAMILIES, families_of

GB = 1024**3
IMAGE_FAMILIES = families_of("image")
VIDEO_FAMILIES = families_of("video")


@dataclass(frozen=True)
class Plan:
    """What a subscription buys. Prices live in Stripe; price ids connect the two."""

    name: str
    label: str
    gpu_hours: float
    storage_bytes: int
    concurrent_runs: int
    families: tuple[str, ...]
    overage: bool
    priority: bool = False
    stripe_price_id: str = ""
    overage_price_id: str = ""
    # What development billing shows as the price (Stripe mode reads the Stripe price instead),
    # in the currency's smallest unit.
    price_amount: int = 0
    price_currency: str = "usd"
    price_interval: str = "month"

    @property
    def gpu_seconds(self) -> int:
        """The period's GPU allowance in seconds."""
        return int(self.gpu_hours * 3600)

    @property
    def storage_gb(self) -> float:
        """Storage allowance in GB, for display."""
        return self.storage_bytes / GB

    @property
    def media_kinds(self) -> str:
        """What the plan trains, in words: "images" or "images + video"."""
        video = any(FAMILIES[family].is_video for family in self.families)
        return "images + video" if video else "images"


DEFAULT_PLANS: tuple[Plan, ...] = (
    Plan("hobby", "Hobby", 5, 20 * GB, 1, IMAGE_FAMILIES, overage=False, price_amount=1200),
    Plan(
        "pro", "Pro", 20, 100 * GB, 2, IMAGE_FAMILIES + VIDEO_FAMILIES, overage=True,
        price_amount=3900,
    ),
    Plan(
        "studio", "Studio", 75, 500 * GB, 4, IMAGE_FAMILIES + VIDEO_FAMILIES,
        overage=True, priority=True, price_amount=12900,
    ),
)  # fmt: skip


def parse_plans(raw: str) -> tuple[Plan, ...]:
    """Plans from the ATTUNE_PLANS_JSON list; each entry overrides a default by name or adds one."""
    if not raw:
        return DEFAULT_PLANS
    try:
        entries = json.loads(raw)
        if not isinstance(entries, list):
            raise ValueError("expected a JSON list")
        defaults = {plan.name: plan for plan in DEFAULT_PLANS}
        return tuple(_plan(entry, defaults) for entry in entries)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"ATTUNE_PLANS_JSON is not a valid plan list: {exc}") from exc


def _plan(entry: dict[str, Any], defaults: dict[str, Plan]) -> Plan:
    known = {f.name for f in fields(Plan)}
    unknown = set(entry) - known - {"storage_gb"}
    if unknown:
        raise ValueError(f"unknown plan fields {sorted(unknown)}")
    values: dict[str, Any] = {}
    base = defaults.get(entry["name"])
    if base is not None:
        values = {f.name: getattr(base, f.name) for f in fields(Plan)}
    values.update({k: v for k, v in entry.items() if k != "storage_gb"})
    if "storage_gb" in entry:
        values["storage_bytes"] = int(float(entry["storage_gb"]) * GB)
    values["families"] = tuple(values["families"])
    unknown = set(values["families"]) - set(FAMILIES)
    if unknown:
        raise ValueError(f"plan {entry['name']!r} names unknown families {sorted(unknown)}")
    return Plan(**values)


def plan_for_prices(plans: tuple[Plan, ...], price_ids: list[str]) -> Plan | None:
    """The plan whose base price is among a subscription's prices."""
    return next((p for p in plans if p.stripe_price_id and p.stripe_price_id in price_ids), None)
