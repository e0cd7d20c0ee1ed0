"""What the web side uses of each base-model family: the shared catalogue, and the estimate.

The facts themselves (labels, limits, GPU class, cost figures) live in `catalogue.families`,
which the engine reads too; the worker re-validates every run with the engine's own rules.
"""

from __future__ import annotations

from catalogue.families import FAMILIES, FamilyFacts

__all__ = ["FAMILIES", "FamilyFacts", "estimate_gpu_seconds"]


def estimate_gpu_seconds(family: str, steps: int) -> int:
    """GPU time a run is expected to take: start-up plus steps at the measured speed."""
    facts = FAMILIES[family]
    return int(facts.startup_seconds + steps * facts.seconds_per_step)
