"""Publishes a run's progress: every event to Redis for the live page, the DB throttled."""

from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis

from app.extensions import db
from app.trainings.models import TrainingRun
from app.trainings.services import PROGRESS_KEY

PROGRESS_TTL_S = 24 * 3600
DB_WRITE_INTERVAL_S = 2.0
CANCEL_CHECK_INTERVAL_S = 1.0


class RunReporter:
    """Forwards trainer events and answers the trainer's should-stop question."""

    def __init__(self, run: TrainingRun, redis: Redis) -> None:
        self.run = run
        self.redis = redis
        self.key = PROGRESS_KEY.format(run_id=run.id)
        self._last_db_write = 0.0
        self._last_cancel_check = 0.0
        self._cancelled = False
        self.samples: list[str] = []

    def on_progress(self, event: Any) -> None:
        """Handle one training.ProgressEvent."""
        data = event.to_dict()
        if data.get("kind") == "sample" and data.get("path"):
            self.samples.append(str(data["path"]))
        if data.get("kind") != "step":
            return
        live = {k: data.get(k) for k in ("step", "total_steps", "loss", "eta_seconds")}
        self.redis.set(self.key, json.dumps(live), ex=PROGRESS_TTL_S)
        now = time.monotonic()
        if now - self._last_db_write >= DB_WRITE_INTERVAL_S:
            self._last_db_write = now
            self.run.step = int(data.get("step") or 0)
            self.run.loss = data.get("loss")
            db.session.commit()

    def should_stop(self) -> bool:
        """True once the person asked to cancel (checked against the DB about once a second)."""
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= CANCEL_CHECK_INTERVAL_S:
            self._last_cancel_check = now
            db.session.refresh(self.run, ["cancel_requested"])
            self._cancelled = self.run.cancel_requested
        return self._cancelled
