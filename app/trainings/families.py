"""What the web side knows about each base-model family: labels, limits and cost.

The training package owns the models themselves; the app may not import it, so the few
numbers the forms and the estimate need live here and the worker re-validates every run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FamilyInfo:
    """A base model as the forms present it."""

    name: str
    label: str
    media: str  # "image" or "video"
    default_resolution: int
    min_resolution: int
    max_resolution: int
    resolution_multiple: int
    seconds_per_step: float  # measured on the family's GPU class, used for estimates
    startup_seconds: int


# label, media, default/min/max resolution, multiple, s/step on its GPU class, start-up s
FAMILIES: dict[str, FamilyInfo] = {
    info.name: info
    for info in (
        FamilyInfo("tiny-sd", "Tiny SD (CPU demo)", "image", 64, 32, 512, 16, 0.5, 20),
        FamilyInfo("sd15", "Stable Diffusion 1.5", "image", 512, 256, 1024, 64, 0.25, 90),
        FamilyInfo("sdxl", "Stable Diffusion XL", "image", 1024, 256, 2048, 64, 0.55, 150),
        FamilyInfo("flux-dev", "FLUX.1 [dev]", "image", 1024, 256, 1536, 16, 0.45, 240),
        FamilyInfo("wan21-t2v-1.3b", "Wan 2.1 T2V 1.3B", "video", 480, 256, 720, 16, 1.4, 240),
    )
}


def estimate_gpu_seconds(family: str, steps: int) -> int:
    """GPU time a run is expected to take: start-up plus steps at the measured speed."""
    info = FAMILIES[family]
    return int(info.startup_seconds + steps * info.seconds_per_step)
