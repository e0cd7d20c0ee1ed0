"""Event bodies: {"type", "timestamp", "data"} as Standard Webhooks and Replicate shape them;
a run's data is its /api/v1 shape (app.trainings.events puts it in)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.db_types import utcnow


def event_body(event_type: str, data: dict[str, Any], now: datetime | None = None) -> str:
    """The JSON text of one event, exactly as it is signed and sent."""
    envelope = {"type": event_type, "timestamp": _iso(now or utcnow()), "data": data}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


def ping_data(endpoint_id: int) -> dict[str, Any]:
    """The body of the "send test event" button."""
    return {"endpoint_id": endpoint_id, "message": "A test event from Attune."}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None
