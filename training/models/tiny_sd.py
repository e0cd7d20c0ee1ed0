"""tiny-sd: the SD 1.5 architecture at toy size, for CPU demos and tests."""

from __future__ import annotations

from training.models.base import FamilySpec
from training.models.sd import BUILTIN_PREFIX, StableDiffusionFamily

SPEC = FamilySpec.from_catalogue(
    "tiny-sd",
    default_base_model=f"{BUILTIN_PREFIX}tiny-sd",
    pipeline_class="StableDiffusionPipeline",
    prediction="scheduler",
    default_guidance_scale=5.0,
)

FAMILY = StableDiffusionFamily(SPEC)
