"""Presets: starting parameters per use, scaled per family from its catalogue entry."""

from __future__ import annotations

from dataclasses import dataclass

from catalogue.families import FamilyFacts


@dataclass(frozen=True)
class Preset:
    """A use a LoRA is trained for, and how its parameters differ from a character LoRA."""

    name: str
    description: str
    steps_factor: float
    rank: int
    caption_dropout: float
    video_only: bool = False
    clips_only: bool = False  # still images teach it nothing: a run refuses datasets with them


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "character",
            "Character — a person, pet or mascot recognised from a few angles",
            1.0, 16, 0.05,
        ),
        Preset(
            "style", "Style — a look, palette or medium applied to any subject", 1.5, 32, 0.1
        ),
        Preset("product", "Product — one object rendered faithfully in new scenes", 1.2, 16, 0.05),
        Preset(
            "motion", "Motion — a movement or camera move (video models)", 1.3, 32, 0.1,
            video_only=True, clips_only=True,
        ),
    )
}  # fmt: skip


def presets_for(facts: FamilyFacts) -> list[str]:
    """Names of the presets that make sense for the family (motion only for video)."""
    return [name for name, preset in PRESETS.items() if facts.is_video or not preset.video_only]


def preset_steps(preset: Preset, facts: FamilyFacts) -> int:
    """Training steps of `preset` on the family."""
    return max(1, round(facts.base_steps * preset.steps_factor))
