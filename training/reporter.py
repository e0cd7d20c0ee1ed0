"""Progress reporting: builds ProgressEvents, estimates time left, tolerates no callback."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from training.results import EventKind, ProgressEvent, SkippedFile

logger = logging.getLogger("training")
# The ETA is the wall-clock step rate over about this much of the recent past: long enough to
# hold the samples and checkpoints that interrupt the steps (they are part of the time left) and
# to smooth a machine's load swings, short enough to follow a lasting change of speed.
ETA_WINDOW_S = 60.0


class Reporter:
    """Sends events to on_progress (if any) and to the 'training' logger."""

    def __init__(self, total_steps: int, on_progress: Callable[[ProgressEvent], None] | None):
        self.total_steps = total_steps
        self._callback = on_progress
        self._recent: deque[tuple[float, int]] = deque()  # (monotonic time, step) in the window
        self._loop: tuple[float, int] | None = None  # when and at which step the loop started
        self._latest: tuple[float, int] | None = None
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

    def mark(self, step: int) -> None:
        """Start the step clock: the loop begins now, at `step` (right before its first step)."""
        self._loop = (time.monotonic(), step)
        self._recent = deque([self._loop])

    def step(self, step: int, loss: float) -> None:
        """A 'step' event with loss and ETA from the recent wall-clock step rate."""
        now = time.monotonic()
        self._latest = (now, step)
        self._recent.append(self._latest)
        while len(self._recent) > 2 and now - self._recent[1][0] >= ETA_WINDOW_S:
            self._recent.popleft()
        since, first = self._recent[0]
        eta = None
        if step > first:
            eta = round((now - since) / (step - first) * max(0, self.total_steps - step), 1)
        self.emit("step", step, loss=loss, eta_seconds=eta)

    def seconds_per_step(self) -> float | None:
        """Wall seconds per step of this call's loop, its samples and checkpoints included."""
        if self._loop is None or self._latest is None or self._latest[1] <= self._loop[1]:
            return None
        return (self._latest[0] - self._loop[0]) / (self._latest[1] - self._loop[1])

    def elapsed(self) -> float:
        """Seconds since the reporter was created."""
        return time.monotonic() - self.started
