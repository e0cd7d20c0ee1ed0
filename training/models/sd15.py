"""sd15: Stable Diffusion 1.5 (epsilon prediction, 512 px)."""

from __future__ import annotations

from training.models.base import FamilySpec
from training.models.sd import StableDiffusionFamily

SPEC = FamilySpec.from_catalogue(
    "sd15",
    pipeline_class="StableDiffusionPipeline",
    prediction="scheduler",
    default_guidance_scale=7.5,
)

FAMILY = StableDiffusionFamily(SPEC)
