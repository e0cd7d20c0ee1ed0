"""A run's live telemetry in Redis: the key names, how a loss point is written, and how a long
curve is thinned. The GPU worker writes it (jobs/progress.py); the run page, the API and the
run row's final curve read it through the same functions, so writer and reader cannot drift.

Keys (all expire KEY_TTL_S after the last write; Redis may lose them, the run row keeps the
step, the loss and the thinned final curve):

    attune:run:{id}:progress   JSON {step, total_steps, loss, eta_seconds}
    attune:run:{id}:loss       list of "step:loss" points, the newest MAX_LOSS_POINTS
    attune:run:{id}:log        list of "HH:MM:SS message" lines, the newest MAX_LOG_LINES
"""

from __future__ import annotations

from typing import Any, TypeVar

PROGRESS_KEY = "attune:run:{run_id}:progress"
LOSS_KEY = "attune:run:{run_id}:loss"
LOG_KEY = "attune:run:{run_id}:log"
KEY_TTL_S = 7 * 24 * 3600
MAX_LOSS_POINTS = 5000
MAX_LOG_LINES = 200
MAX_CURVE_POINTS = 500  # what the run page draws and the run row keeps

Point = TypeVar("Point")


def progress_key(run_id: int) -> str:
    """The key of the run's latest step, loss and ETA."""
    return PROGRESS_KEY.format(run_id=run_id)


def live_keys(run_id: int) -> list[str]:
    """The Redis keys of a run's live progress, loss curve and log tail."""
    return [template.format(run_id=run_id) for template in (PROGRESS_KEY, LOSS_KEY, LOG_KEY)]


def encode_point(step: int, loss: float) -> str:
    """One loss point as stored: "step:loss" with six significant digits."""
    return f"{step}:{loss:.6g}"


def decode_point(raw: bytes | str) -> list[float]:
    """A stored loss point as [step, loss] (JSON-ready)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    step, loss = text.split(":", 1)
    return [int(step), float(loss)]


def thin(points: list[Point], most: int) -> list[Point]:
    """At most `most` (+1) evenly spaced points, always starting with the first and ending
    with the latest one."""
    stride = max(1, -(-len(points) // most))
    picked = points[::stride]
    if points and (len(points) - 1) % stride:
        picked.append(points[-1])
    return picked


def loss_curve(raw_points: list[Any], most: int = MAX_CURVE_POINTS) -> list[list[float]]:
    """The stored points decoded and thinned for drawing or keeping on the run row."""
    return [decode_point(raw) for raw in thin(raw_points, most)]
