"""Event bodies: {"type", "timestamp", "data"} as Standard Webhooks and Replicate shape them;
a run's data is its /api/v1 shape."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.api_v1.shapes import training_json
from app.db_types import utcnow
from app.trainings.models import TrainingRun


def event_body(event_type: str, data: dict[str, Any], now: datetime | None = None) -> str:
    """The JSON text of one event, exactly as it is signed and sent."""
    envelope = {"type": event_type, "timestamp": _iso(now or utcnow()), "data": data}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


def run_data(run: TrainingRun, live: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run as GET /api/v1/trainings/{id} shows it (its `urls` lead to the API), with the
    step, loss and ETA the event carries."""
    progress = {"step": run.step, "loss": run.loss, "eta_seconds": None, "queue_position": None}
    progress |= {k: v for k, v in (live or {}).items() if k in progress and v is not None}
    return training_json(run, progress)


def ping_data(endpoint_id: int) -> dict[str, Any]:
    """The body of the "send test event" button."""
    return {"endpoint_id": endpoint_id, "message": "A test event from Attune."}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None
