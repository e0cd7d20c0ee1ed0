"""Captions: a same-name .txt file beside the media, else the run's template, with the trigger.

The rule itself (markers, the trigger word in front when missing) is catalogue.prompts, which
the dataset pages explain.
"""

from __future__ import annotations

from pathlib import Path

from catalogue.prompts import trained_caption

MAX_CAPTION_CHARS = 2000


def caption_for(media: Path, template: str, trigger: str) -> str:
    """The caption one media file trains with: its .txt file's text or the template."""
    sidecar = media.with_suffix(".txt")
    text = sidecar.read_text(encoding="utf-8", errors="replace") if sidecar.is_file() else None
    return trained_caption(text, template, trigger)[:MAX_CAPTION_CHARS]


def write_captions_file(items: list[tuple[str, str]], path: Path) -> Path:
    """Write (file name, caption trained) pairs as tab-separated lines, sorted by name."""
    lines = ["# file\tcaption trained (the trigger word added where it was missing)"]
    lines += [f"{name}\t{caption}" for name, caption in sorted(items)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
