"""Publishes a run's progress: every step to Redis for the live page, the DB throttled.

Samples and checkpoints are uploaded as they appear, so a run that dies keeps them.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

from redis import Redis
from sqlalchemy import update
from sqlalchemy.engine import Engine

from app.accounts.services import account_is_leaving
from app.db_types import utcnow
from app.extensions import db, get_settings
from app.trainings.artifacts import RunArtifacts
from app.trainings.events import emit_run_event_safely
from app.trainings.models import TrainingRun
from app.trainings.telemetry import (
    KEY_TTL_S,
    MAX_LOG_LINES,
    MAX_LOSS_POINTS,
    encode_point,
    live_keys,
    loss_curve,
)
from jobs import run_files

log = logging.getLogger(__name__)
DB_WRITE_INTERVAL_S = 2.0
CANCEL_CHECK_INTERVAL_S = 1.0
SCRATCH_NAME = re.compile(r"\b(item-\d+)\.[A-Za-z0-9]+\b")  # as jobs.run_files.scratch_stem


class RunReporter:
    """Forwards trainer events and answers the trainer's should-stop question."""

    def __init__(self, run: TrainingRun, redis: Redis) -> None:
        self.run = run
        self.redis = redis
        self.keys = dict(zip(("progress", "loss", "log"), live_keys(run.id), strict=True))
        self._last_db_write = 0.0
        self._last_webhook = float("-inf")
        self._webhook_interval = get_settings().webhook_progress_interval_s
        self._last_cancel_check = 0.0
        self._cancelled = False
        # Set when the stop came from an account deletion: nothing more is uploaded, since
        # the erasure waits for this job and deletes everything a moment later.
        self.owner_leaving = False
        # The worker's file names -> the names the person uploaded, for the log (set once the
        # dataset is copied), and how many checkpoints the trainer keeps.
        self.uploaded_names: dict[str, str] = {}
        self.keep_checkpoints = 0

    def log(self, message: str) -> None:
        """Append a line to the run's log tail."""
        stamp = time.strftime("%H:%M:%S")
        pipe = self.redis.pipeline()
        pipe.rpush(self.keys["log"], f"{stamp} {message}")
        pipe.ltrim(self.keys["log"], -MAX_LOG_LINES, -1)
        pipe.expire(self.keys["log"], KEY_TTL_S)
        pipe.execute()

    def on_progress(self, event: Any) -> None:
        """Handle one training.ProgressEvent."""
        data = event.to_dict()
        kind, path = data["kind"], data.get("path")
        if kind == "step":
            self._step(data)
        elif kind == "sample" and path:
            self._record_sample(Path(path))
        elif kind == "checkpoint" and path:
            self._record_checkpoint(Path(path), int(data["step"]))
        elif kind == "log" and data.get("message"):
            self.log(self._in_uploaded_names(str(data["message"])))

    def _step(self, data: dict[str, Any]) -> None:
        live = {k: data.get(k) for k in ("step", "total_steps", "loss", "eta_seconds")}
        pipe = self.redis.pipeline()
        pipe.set(self.keys["progress"], json.dumps(live), ex=KEY_TTL_S)
        if data.get("loss") is not None:
            pipe.rpush(self.keys["loss"], encode_point(int(data["step"]), data["loss"]))
            pipe.ltrim(self.keys["loss"], -MAX_LOSS_POINTS, -1)
            pipe.expire(self.keys["loss"], KEY_TTL_S)
        pipe.execute()
        now = time.monotonic()
        if now - self._last_db_write >= DB_WRITE_INTERVAL_S:
            self._last_db_write = now
            self.run.step, self.run.loss = int(data["step"]), data.get("loss")
            self.run.heartbeat_at = utcnow()
            db.session.commit()
        if now - self._last_webhook >= self._webhook_interval:  # throttled per run
            self._last_webhook = now
            emit_run_event_safely(self.run, "progress", live)

    def _record_sample(self, path: Path) -> None:
        if self.owner_leaving:
            return
        RunArtifacts(self.run).add_sample(run_files.upload_sample(self.run, path))
        db.session.commit()

    def _record_checkpoint(self, folder: Path, step: int) -> None:
        if self.owner_leaving:
            return
        files = run_files.upload_checkpoint(self.run, folder, step)
        RunArtifacts(self.run).add_checkpoint(step, files)
        kept = {int(p.name.removeprefix("step-")) for p in folder.parent.glob("step-*")}
        run_files.forget_rotated_checkpoints(self.run, kept)
        db.session.commit()
        steps = ", ".join(str(s) for s in sorted(kept))
        limit = f"the newest {self.keep_checkpoints} are kept" if self.keep_checkpoints else "kept"
        self.log(f"checkpoint saved at step {step} ({limit}: step{'s' * (len(kept) > 1)} {steps})")

    def _in_uploaded_names(self, message: str) -> str:
        """The engine's message with the worker's file names replaced by the uploaded ones."""

        def uploaded(match: re.Match[str]) -> str:
            return self.uploaded_names.get(match[1], match[0])

        return SCRATCH_NAME.sub(uploaded, message)

    def should_stop(self) -> bool:
        """True once the person asked to cancel or to delete the account (checked against the
        DB about once a second)."""
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= CANCEL_CHECK_INTERVAL_S:
            self._last_cancel_check = now
            db.session.refresh(self.run, ["cancel_requested"])
            self._cancelled = self.run.cancel_requested
            self.owner_leaving = self._cancelled and account_is_leaving(self.run.user_id)
        return self._cancelled

    def loss_curve(self) -> list[list[float]]:
        """The loss history, thinned as the run page thins it, to keep on the run row."""
        return loss_curve(self.redis.lrange(self.keys["loss"], 0, -1))


class Heartbeat:
    """Marks the run alive every few seconds from a thread, whatever phase training is in."""

    def __init__(self, engine: Engine, run_id: int, interval_s: float) -> None:
        self._engine, self._run_id, self._interval = engine, run_id, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with self._engine.begin() as connection:
                    connection.execute(
                        update(TrainingRun)
                        .where(TrainingRun.id == self._run_id)
                        .values(heartbeat_at=utcnow())
                    )
            except Exception:  # a missed beat is retried; the sweeper tolerates several
                log.warning("run %s: heartbeat write failed", self._run_id, exc_info=True)
