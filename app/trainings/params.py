"""Validation of run parameters, field by field, for the form and the JSON API alike.

The worker validates again with the engine's TrainingConfig; these ranges are the subset a
person may choose, and they are kept inside the engine's own limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.trainings.families import FAMILIES

MAX_SAMPLE_PROMPTS = 4
MAX_PROMPT_CHARS = 300


@dataclass(frozen=True)
class Field:
    """One numeric parameter: its type, bounds and a label for messages."""

    kind: type
    low: float
    high: float
    label: str


FIELDS = {
    "steps": Field(int, 1, 20_000, "Steps"),
    "rank": Field(int, 1, 128, "LoRA rank"),
    "alpha": Field(float, 0.5, 256, "LoRA alpha"),
    "learning_rate": Field(float, 1e-6, 1e-2, "Learning rate"),
    "batch_size": Field(int, 1, 8, "Batch size"),
    "seed": Field(int, 0, 2**31 - 1, "Seed"),
    "caption_dropout": Field(float, 0.0, 0.5, "Caption dropout"),
    "checkpoint_every": Field(int, 0, 20_000, "Checkpoint every"),
    "sample_every": Field(int, 0, 20_000, "Sample every"),
}

# Parameters that take one of a few words: the choices, with what each means for a person.
CHOICES = {
    "save_precision": {
        "bf16": "bf16 (half the size; what the base models run in)",
        "fp32": "fp32 (full precision, twice the size)",
    },
}
CHOICE_LABELS = {"save_precision": "Precision of the LoRA files"}


def validate_params(family: str, raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Clean values and per-field errors; a field left empty takes no value (the preset's)."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, spec in FIELDS.items():
        if raw.get(name) in (None, ""):
            continue
        value, error = _number(raw[name], spec)
        if error:
            errors[name] = error
        else:
            values[name] = value
    for name, choices in CHOICES.items():
        if raw.get(name) in (None, ""):
            continue
        if raw[name] in choices:
            values[name] = raw[name]
        else:
            errors[name] = f"{CHOICE_LABELS[name]} must be one of: {', '.join(choices)}."
    resolution, error = _resolution(family, raw.get("resolution"))
    if error:
        errors["resolution"] = error
    elif resolution:
        values["resolution"] = resolution
    prompts, error = _prompts(raw.get("sample_prompts"))
    if error:
        errors["sample_prompts"] = error
    elif prompts is not None:
        values["sample_prompts"] = prompts
    return values, errors


def _number(raw: Any, spec: Field) -> tuple[float | int | None, str | None]:
    if isinstance(raw, bool):
        return None, f"{spec.label} must be a number."
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None, f"{spec.label} must be a number."
    if value != value or value in (float("inf"), float("-inf")):
        return None, f"{spec.label} must be a number."
    if spec.kind is int:
        if value != int(value):
            return None, f"{spec.label} must be a whole number."
        value = int(value)
    if not spec.low <= value <= spec.high:
        return None, f"{spec.label} must be between {spec.low:g} and {spec.high:g}."
    return value, None


def _resolution(family: str, raw: Any) -> tuple[int | None, str | None]:
    if raw in (None, ""):
        return None, None
    info = FAMILIES[family]
    spec = Field(int, info.min_resolution, info.max_resolution, "Resolution")
    value, error = _number(raw, spec)
    if error:
        return None, error
    assert isinstance(value, int)
    if value % info.resolution_multiple:
        return None, f"Resolution must be a multiple of {info.resolution_multiple}."
    return value, None


def _prompts(raw: Any) -> tuple[list[str] | None, str | None]:
    if raw in (None, ""):
        return None, None
    lines = raw.splitlines() if isinstance(raw, str) else raw
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        return None, "Sample prompts must be text, one per line."
    prompts = [line.strip() for line in lines if line.strip()]
    if len(prompts) > MAX_SAMPLE_PROMPTS:
        return None, f"Use at most {MAX_SAMPLE_PROMPTS} sample prompts."
    if any(len(prompt) > MAX_PROMPT_CHARS for prompt in prompts):
        return None, f"Each sample prompt must be at most {MAX_PROMPT_CHARS} characters."
    return prompts, None
