"""What the web side uses of each base-model family: the shared catalogue, and the estimate.

The facts themselves (labels, limits, GPU class, cost figures) live in `catalogue.families`,
which the engine reads too; the worker re-validates every run with the engine's own rules.
The estimate starts from the catalogue's bench figures and follows what runs of the family on
its GPU class actually took, once some have finished.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from sqlalchemy import select

from app.extensions import db, get_settings
from app.queues import queue_for_family
from app.trainings.models import TrainingRun
from catalogue.families import FAMILIES, TINY_SOURCE_PREFIX, FamilyFacts

__all__ = [
    "FAMILIES",
    "FamilyFacts",
    "StepSpeed",
    "base_model_source",
    "estimate_gpu_seconds",
    "step_speed",
    "tiny_model_folder",
]

# The estimate is the median of this many most recent measured runs: enough to shrug off one
# run on a busy machine, few enough to follow a faster driver or a new GPU type within a day.
CALIBRATION_RUNS = 9


@dataclass(frozen=True)
class StepSpeed:
    """How long a run of a family takes on its GPU class: start-up plus seconds per step."""

    startup_seconds: float
    seconds_per_step: float
    measured_runs: int  # 0: the catalogue's bench figures

    def gpu_seconds(self, steps: int) -> int:
        """GPU time of a run of `steps` steps, in whole seconds rounded up (it is reserved)."""
        return math.ceil(self.startup_seconds + steps * self.seconds_per_step)


def step_speed(family: str) -> StepSpeed:
    """The family's speed on its GPU class: the median of its recent succeeded runs there, or
    the catalogue's figures before any has been measured."""
    facts = FAMILIES[family]
    query = (
        select(TrainingRun.seconds_per_step, TrainingRun.startup_seconds)
        .where(
            TrainingRun.family == family,
            TrainingRun.queue == queue_for_family(family),
            TrainingRun.status == "succeeded",
            TrainingRun.seconds_per_step.is_not(None),
            TrainingRun.startup_seconds.is_not(None),
        )
        .order_by(TrainingRun.finished_at.desc(), TrainingRun.id.desc())
        .limit(CALIBRATION_RUNS)
    )
    measured = db.session.execute(query).all()
    if not measured:
        return StepSpeed(facts.startup_seconds, facts.seconds_per_step, 0)
    return StepSpeed(
        startup_seconds=median(row.startup_seconds for row in measured),
        seconds_per_step=median(row.seconds_per_step for row in measured),
        measured_runs=len(measured),
    )


def estimate_gpu_seconds(family: str, steps: int) -> int:
    """GPU time a run is expected to take: start-up plus steps at the measured speed."""
    return step_speed(family).gpu_seconds(steps)


def tiny_model_folder(family: str) -> Path | None:
    """Where the worker builds the tiny random model of `family`, when that is its source
    ("tiny:<name>", the embedded default); None when a hub id or folder is configured."""
    settings = get_settings()
    source = settings.model_sources[family]
    if not source.startswith(TINY_SOURCE_PREFIX):
        return None
    return settings.models_dir / source.removeprefix(TINY_SOURCE_PREFIX)


def base_model_source(family: str) -> str:
    """The base model this server trains `family` on, as a person would load it: the hub id
    or folder ATTUNE_MODEL_<FAMILY> names, or the folder of the tiny model the worker built."""
    folder = tiny_model_folder(family)
    return str(folder) if folder is not None else get_settings().model_sources[family]
