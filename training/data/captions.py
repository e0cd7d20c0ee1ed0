"""Captions: a same-name .txt file beside the media, else the run's template with the trigger."""

from __future__ import annotations

from pathlib import Path

from catalogue.prompts import fill_trigger

__all__ = ["MAX_CAPTION_CHARS", "caption_for", "fill_trigger"]

MAX_CAPTION_CHARS = 2000


def caption_for(media: Path, template: str, trigger: str) -> str:
    """The caption for one media file; '{trigger}'/'[trigger]' in either source become trigger."""
    sidecar = media.with_suffix(".txt")
    if sidecar.is_file():
        text = sidecar.read_text(encoding="utf-8", errors="replace").strip()
    else:
        text = template
    return fill_trigger(" ".join(text.split()), trigger)[:MAX_CAPTION_CHARS]
