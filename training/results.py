"""What a run reports: progress events while it runs and a TrainResult at the end."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

EventKind = Literal["step", "sample", "checkpoint", "log", "done"]


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report; JSON-safe through to_dict() for Redis and the database."""

    kind: EventKind
    step: int
    total_steps: int
    loss: float | None = None
    eta_seconds: float | None = None
    path: str | None = None  # sample or checkpoint written
    message: str | None = None  # 'log' text

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields."""
        return asdict(self)


@dataclass(frozen=True)
class SkippedFile:
    """A dataset file that was not used, and why (shown to the user)."""

    file: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """Plain dict of the fields."""
        return asdict(self)


@dataclass
class TrainResult:
    """Outcome of train(): files written, steps done and whether it was stopped early."""

    steps_done: int
    total_steps: int
    final_loss: float | None
    stopped: bool
    seconds: float
    lora_path: str | None = None  # diffusers/PEFT file; None when stopped before the end
    comfyui_path: str | None = None  # kohya-key file for ComfyUI/A1111
    # Every exported file by download kind: {"lora": ..., "comfyui": ...}; a family with several
    # denoisers has one pair per denoiser ("lora_high_noise", "comfyui_high_noise", ...) and
    # lora_path/comfyui_path are its first denoiser's.
    lora_files: dict[str, str] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)  # those still on disk
    skipped: list[SkippedFile] = field(default_factory=list)
    resumed_from: int | None = None  # checkpoint step this call started from
    # Wall seconds per step of this call's loop, its samples and checkpoints included (what
    # the service calibrates its estimates with); None when no step ran.
    seconds_per_step: float | None = None
    dataset_fingerprint: str = ""
    captions_path: str | None = None  # captions.txt: each used file and the caption it trained

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the result."""
        data = asdict(self)
        data["skipped"] = [s.to_dict() for s in self.skipped]
        return data
