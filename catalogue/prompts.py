"""Prompts and captions: the trigger-word markers and the caption rule, in one place.

The engine fills sample prompts and builds training captions with these functions, and the run
and dataset pages show and explain the same thing. The caption rule keeps the trigger word from
silently going missing: an item trains on its own caption, else on the dataset's caption
template; ``{trigger}``/``[trigger]`` become the trigger word; and when a trigger word is set, a
caption that does not contain it gets it in front. With no trigger word the markers go, with the
small words leading up to them ("photo of {trigger}" -> "photo"), so nothing ends in "of".
"""

from __future__ import annotations

import re

TRIGGER_MARKERS = ("{trigger}", "[trigger]")
DEFAULT_CAPTION_TEMPLATE = "photo of {trigger}"

TRIGGER_RULE = (
    "Every caption is trained with the trigger word: a caption that does not contain it gets it "
    "in front (“ohwx, photo of a red car”). Items without a caption train on the caption "
    "template, where {trigger} becomes the trigger word."
)

# Words that only lead up to the trigger ("a photo of {trigger}"); dropped with an empty marker.
_LEAD_IN = r"(?:\b(?:a|an|the|of|by|in|on|at|with|for|from|to|and)\s+)*"
_EMPTY_MARKER = re.compile(_LEAD_IN + "(?:" + "|".join(map(re.escape, TRIGGER_MARKERS)) + ")", re.I)


def fill_trigger(text: str, trigger: str) -> str:
    """Put the trigger word where the markers are; with no trigger, drop them and their lead-in."""
    if trigger:
        for marker in TRIGGER_MARKERS:
            text = text.replace(marker, trigger)
        return text
    text = _EMPTY_MARKER.sub("", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", " ".join(text.split()))
    return re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text).strip(" ,;:")


def has_trigger(caption: str, trigger: str) -> bool:
    """True when the caption names the trigger word as a word of its own (in any case)."""
    pattern = rf"(?<![\w-]){re.escape(trigger)}(?![\w-])"
    return bool(trigger) and re.search(pattern, caption, re.IGNORECASE) is not None


def trained_caption(caption: str | None, template: str, trigger: str) -> str:
    """The caption a run trains for one item: its own or the template, with the trigger word."""
    own = " ".join((caption or "").split())
    text = fill_trigger(own or " ".join(template.split()), trigger)
    if trigger and not has_trigger(text, trigger):
        return f"{trigger}, {text}" if text else trigger
    return text
