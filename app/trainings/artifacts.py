"""A run's artifacts JSON, read and changed in one place.

``TrainingRun.artifacts`` holds the object keys of what a run produced: its LoRA files by
download kind ("lora", "comfyui", "lora_<denoiser>", ...), ``samples`` (keys in the order they
were made), ``checkpoints`` (step as a string -> its downloadable files, kind -> key; rows
written before checkpoints had both formats hold a single key) and
``loss_curve`` (the thinned [step, loss] points) and ``captions`` (the key of captions.txt, each
file and the caption it trained with). A JSON column only notices a new value, so
every change here assigns a fresh dict to the row; the caller commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.trainings.models import TrainingRun

CAPTIONS_KIND = "captions"  # captions.txt: the caption each file trained with


class RunArtifacts:
    """The artifacts of one run."""

    def __init__(self, run: TrainingRun) -> None:
        self.run = run

    @property
    def data(self) -> dict[str, Any]:
        """A copy of the whole JSON."""
        return dict(self.run.artifacts or {})

    @property
    def samples(self) -> list[str]:
        """The sample keys, oldest first."""
        return list(self.data.get("samples", []))

    @property
    def checkpoints(self) -> dict[str, Any]:
        """Checkpoint step (as a string) -> its downloadable LoRA files (kind -> key)."""
        return dict(self.data.get("checkpoints", {}))

    def update(self, **values: Any) -> None:
        """Set top-level entries (a LoRA kind's key, the loss curve, ...)."""
        self.run.artifacts = {**self.data, **values}

    def add_sample(self, key: str) -> None:
        """Record one more sample."""
        self.update(samples=[*self.samples, key])

    def add_checkpoint(self, step: int, files: dict[str, str]) -> None:
        """Record the checkpoint saved at `step` with its downloadable files (kind -> key)."""
        self.update(checkpoints={**self.checkpoints, str(step): files})

    def drop_checkpoints(self, steps: Iterable[int]) -> None:
        """Forget the checkpoints at `steps` (their objects are the caller's to delete)."""
        gone = {str(step) for step in steps}
        self.update(checkpoints={s: k for s, k in self.checkpoints.items() if s not in gone})

    def clear(self, only: str | None = None) -> None:
        """Forget everything, or only the entry `only` (e.g. "samples")."""
        self.run.artifacts = {k: v for k, v in self.data.items() if only and k != only}
