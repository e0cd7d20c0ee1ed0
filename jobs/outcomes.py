"""How a GPU job ended, in words for the person and as a charge: one classification of the
engine's errors for training runs and try-it renders alike."""

from __future__ import annotations

from dataclasses import dataclass

from training.errors import ConfigError, DatasetError, TrainingError, TrainingOutOfMemory

PLATFORM_MESSAGE = "The run failed because of a problem on our side. You are not charged for it."


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended."""

    status: str
    error: str | None = None
    platform_fault: bool = False  # our fault: the attempt's GPU time is not charged
    steps_trained: int = 0  # by this attempt
    seconds_per_step: float | None = None  # this attempt's loop, samples and checkpoints in it


def engine_outcome(exc: Exception) -> Outcome:
    """A failed attempt's outcome: the engine's own words for its errors, a generic apology for
    anything else. Bad settings or data (ConfigError, DatasetError and its clip errors) are the
    person's; running out of memory and every other error are ours, and not charged."""
    if not isinstance(exc, TrainingError):
        return Outcome("failed", PLATFORM_MESSAGE, platform_fault=True)
    if isinstance(exc, TrainingOutOfMemory):
        return Outcome("failed", f"{exc} You are not charged for this run.", platform_fault=True)
    user_fault = isinstance(exc, (ConfigError, DatasetError))
    return Outcome("failed", str(exc), platform_fault=not user_fault)
