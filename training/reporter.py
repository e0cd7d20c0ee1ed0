"""Progress reporting: builds ProgressEvents, estimates time left, tolerates no callback."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from training.results import EventKind, ProgressEvent, SkippedFile

logger = logging.getLogger("training")
_EMA = 0.1  # weight of the newest step time in the running average


class Reporter:
    """Sends events to on_progress (if any) and to the 'training' logger."""

    def __init__(self, total_steps: int, on_progress: Callable[[ProgressEvent], None] | None):
        self.total_steps = total_steps
        self._callback = on_progress
        self._step_seconds: float | None = None
        self._last: float | None = None
        self.started = time.monotonic()

    def emit(self, kind: EventKind, step: int, **fields: object) -> ProgressEvent:
        """Build and deliver one event."""
        event = ProgressEvent(kind=kind, step=step, total_steps=self.total_steps, **fields)
        if kind != "step":
            logger.info("%s step=%d %s", kind, step, event.message or event.path or "")
        if self._callback is not None:
            self._callback(event)
        return event

    def log(self, step: int, message: str) -> None:
        """A 'log' event with a human-readable message."""
        self.emit("log", step, message=message)

    def skipped(self, skip: SkippedFile, step: int = 0) -> None:
        """Report a dataset file that was left out."""
        self.log(step, f"skipped {skip.file}: {skip.reason}")

    def mark(self) -> None:
        """Start timing from now (call right before the first step)."""
        self._last = time.monotonic()

    def pause_timing(self) -> None:
        """Forget the clock so sampling/checkpoint time does not skew the step average."""
        self._last = None

    def step(self, step: int, loss: float) -> None:
        """A 'step' event with loss and ETA from an average of recent step times."""
        now = time.monotonic()
        if self._last is not None:
            took = now - self._last
            avg = self._step_seconds
            self._step_seconds = took if avg is None else (1 - _EMA) * avg + _EMA * took
        self._last = now
        eta = None
        if self._step_seconds is not None:
            eta = round(self._step_seconds * (self.total_steps - step), 1)
        self.emit("step", step, loss=loss, eta_seconds=eta)

    def elapsed(self) -> float:
        """Seconds since the reporter was created."""
        return time.monotonic() - self.started
