"""A run's webhook events: its /api/v1 shape, queued by app.webhooks for every destination that
wants it (the owner's subscribed endpoints and the run's own webhook)."""

from __future__ import annotations

import logging
from typing import Any

from app.extensions import db
from app.trainings.models import TrainingRun
from app.trainings.run_json import training_json
from app.webhooks.events import queue_event
from app.webhooks.models import RUN_EVENT_FILTERS

log = logging.getLogger(__name__)


def emit_run_event(run: TrainingRun, kind: str, live: dict[str, Any] | None = None) -> int:
    """Queue training.<kind> ("start", "progress", "completed") for every destination that
    wants it: the owner's subscribed endpoints and the run's own webhook. Returns how many."""
    wants_own = run.webhook and kind in (run.webhook_events_filter or RUN_EVENT_FILTERS)
    return queue_event(
        run.user_id,
        f"training.{kind}",
        run_data(run, live),
        run_url=run.webhook if wants_own else None,
        run_id=run.id,
    )


def emit_run_event_safely(run: TrainingRun, kind: str, live: dict[str, Any] | None = None) -> None:
    """emit_run_event for the training worker: a webhook problem is logged, never fails a run."""
    try:
        emit_run_event(run, kind, live)
    except Exception:
        db.session.rollback()
        log.warning("run %s: could not queue its %s webhooks", run.id, kind, exc_info=True)


def run_data(run: TrainingRun, live: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run as GET /api/v1/trainings/{id} shows it (its `urls` lead to the API), with the
    step, loss and ETA the event carries."""
    progress = {"step": run.step, "loss": run.loss, "eta_seconds": None, "queue_position": None}
    progress |= {k: v for k, v in (live or {}).items() if k in progress and v is not None}
    return training_json(run, progress)
