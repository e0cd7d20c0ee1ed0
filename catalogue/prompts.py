"""Sample prompts: the trigger-word markers the engine fills in and the run page shows filled."""

from __future__ import annotations

TRIGGER_MARKERS = ("{trigger}", "[trigger]")


def fill_trigger(prompt: str, trigger: str) -> str:
    """Replace trigger markers in a sample prompt."""
    for marker in TRIGGER_MARKERS:
        prompt = prompt.replace(marker, trigger)
    return prompt
