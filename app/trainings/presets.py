"""Presets: sensible starting parameters per use and base-model family."""

from __future__ import annotations

from typing import Any

from app.trainings.families import FAMILIES

PRESETS = {
    "character": "Character — a person, pet or mascot recognised from a few angles",
    "style": "Style — a look, palette or medium applied to any subject",
    "product": "Product — one object rendered faithfully in new scenes",
    "motion": "Motion — a movement or camera move (video models)",
}
VIDEO_ONLY = {"motion"}

# Steps per family for a character LoRA on ~20 images; other presets scale from it.
BASE_STEPS = {"tiny-sd": 30, "sd15": 1500, "sdxl": 1500, "flux-dev": 1000, "wan21-t2v-1.3b": 1500}
PRESET_SHAPE: dict[str, dict[str, Any]] = {
    "character": {"steps_factor": 1.0, "rank": 16, "caption_dropout": 0.05},
    "style": {"steps_factor": 1.5, "rank": 32, "caption_dropout": 0.1},
    "product": {"steps_factor": 1.2, "rank": 16, "caption_dropout": 0.05},
    "motion": {"steps_factor": 1.3, "rank": 32, "caption_dropout": 0.1},
}
LEARNING_RATES = {"tiny-sd": 5e-4, "sd15": 1e-4, "sdxl": 1e-4, "flux-dev": 1e-4}
VIDEO_LEARNING_RATE = 5e-5


def presets_for(family: str) -> list[str]:
    """Presets that make sense for `family` (motion only for video)."""
    video = FAMILIES[family].media == "video"
    return [name for name in PRESETS if video or name not in VIDEO_ONLY]


def preset_defaults(preset: str, family: str) -> dict[str, Any]:
    """The parameters a preset fills in for a family; every value can be edited."""
    shape, info = PRESET_SHAPE[preset], FAMILIES[family]
    steps = max(1, round(BASE_STEPS[family] * shape["steps_factor"]))
    return {
        "steps": steps,
        "rank": shape["rank"],
        "alpha": shape["rank"],
        "learning_rate": LEARNING_RATES.get(family, VIDEO_LEARNING_RATE),
        "resolution": info.default_resolution,
        "batch_size": 1,
        "caption_dropout": shape["caption_dropout"],
        "checkpoint_every": max(1, steps // 4),
        "sample_every": max(1, steps // 4),
        "seed": 42,
    }
