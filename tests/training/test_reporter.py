"""The live ETA: the run's own recent wall-clock step rate, pauses for samples included."""

from __future__ import annotations

import pytest

from training import reporter as reporter_module
from training.reporter import Reporter
from training.results import ProgressEvent


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(reporter_module.time, "monotonic", fake)
    return fake


def _train(reporter: Reporter, clock: Clock, steps: range, step_s: float, pause_s: float) -> None:
    """Steps of `step_s` each, with a `pause_s` sample and checkpoint after every 50th."""
    for step in steps:
        clock.now += step_s
        reporter.step(step, 0.1)
        if step % 50 == 0:
            clock.now += pause_s


def test_the_eta_counts_the_samples_and_checkpoints_still_ahead(clock: Clock) -> None:
    events: list[ProgressEvent] = []
    reporter = Reporter(1000, events.append)
    reporter.mark(0)
    # 50 steps of 0.1 s and a 5 s pause: 10 s per 50 steps, 0.2 s per step all told.
    _train(reporter, clock, range(1, 301), step_s=0.1, pause_s=5.0)
    eta = events[-1].eta_seconds
    assert eta is not None and 120 <= eta <= 150  # 700 steps x 0.2 s; bare steps say 70 s
    # Up to step 300: its 300 steps and the five pauses between them.
    assert reporter.seconds_per_step() == pytest.approx((300 * 0.1 + 5 * 5.0) / 300)


def test_the_eta_follows_a_slower_machine_within_a_minute(clock: Clock) -> None:
    events: list[ProgressEvent] = []
    reporter = Reporter(2000, events.append)
    reporter.mark(100)  # resumed from a checkpoint at step 100
    _train(reporter, clock, range(101, 701), step_s=0.05, pause_s=0.0)
    assert events[-1].eta_seconds == pytest.approx(1300 * 0.05, rel=0.02)
    _train(reporter, clock, range(701, 900), step_s=0.5, pause_s=0.0)  # 100 s at the new pace
    assert events[-1].eta_seconds == pytest.approx(1100 * 0.5, rel=0.02)
    # The attempt's own average, for the estimates of later runs: its 799 steps and 137 s.
    assert reporter.seconds_per_step() == pytest.approx((600 * 0.05 + 199 * 0.5) / 799)


def test_no_eta_before_a_step_has_been_timed(clock: Clock) -> None:
    events: list[ProgressEvent] = []
    reporter = Reporter(10, events.append)
    assert reporter.seconds_per_step() is None
    reporter.mark(0)
    clock.now += 0.5
    reporter.step(1, 0.2)
    assert events[-1].eta_seconds == pytest.approx(4.5)
    reporter.step(10, 0.2)
    assert events[-1].eta_seconds == 0.0
