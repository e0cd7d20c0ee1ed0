"""Presets: the catalogue's starting parameters per use, as the run form fills them in."""

from __future__ import annotations

from typing import Any

from catalogue import presets as catalogue_presets
from catalogue.families import FAMILIES

PRESETS = {name: preset.description for name, preset in catalogue_presets.PRESETS.items()}
# Why a preset is not offered for a family, for the presets that are not for every family.
PRESET_LIMITS = {
    name: "for video base models only"
    for name, preset in catalogue_presets.PRESETS.items()
    if preset.video_only
}


def presets_for(family: str) -> list[str]:
    """Presets that make sense for `family` (motion only for video)."""
    return catalogue_presets.presets_for(FAMILIES[family])


def preset_defaults(preset: str, family: str) -> dict[str, Any]:
    """The parameters a preset fills in for a family; every value can be edited."""
    shape, facts = catalogue_presets.PRESETS[preset], FAMILIES[family]
    steps = catalogue_presets.preset_steps(shape, facts)
    return {
        "steps": steps,
        "rank": shape.rank,
        "alpha": shape.rank,
        "learning_rate": facts.learning_rate,
        "resolution": facts.default_resolution,
        "batch_size": 1,
        "caption_dropout": shape.caption_dropout,
        "checkpoint_every": max(1, steps // 4),
        "sample_every": max(1, steps // 4),
        "seed": 42,
        # How the frozen base loads on the family's GPU class (int8 where that makes it fit).
        "quantize": facts.quantize,
        "save_precision": "bf16",
    }


def default_preset(family: str) -> str:
    """The preset a run takes when none is named: the family's first (character)."""
    return presets_for(family)[0]
