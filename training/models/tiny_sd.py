"""tiny-sd: the SD 1.5 architecture at toy size, for CPU demos and tests."""

from __future__ import annotations

from training.models.base import FamilySpec
from training.models.sd import BUILTIN_PREFIX, StableDiffusionFamily

SPEC = FamilySpec(
    name="tiny-sd",
    media="image",
    default_base_model=f"{BUILTIN_PREFIX}tiny-sd",
    pipeline_class="StableDiffusionPipeline",
    default_resolution=64,
    min_resolution=32,
    max_resolution=512,
    size_multiple=16,
    prediction="scheduler",
    default_guidance_scale=5.0,
    notes="Random weights; produces noise-like images. For demos and tests only.",
)

FAMILY = StableDiffusionFamily(SPEC)
