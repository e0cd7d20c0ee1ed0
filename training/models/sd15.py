"""sd15: Stable Diffusion 1.5 (epsilon prediction, 512 px)."""

from __future__ import annotations

from training.models.base import FamilySpec
from training.models.sd import StableDiffusionFamily

SPEC = FamilySpec(
    name="sd15",
    media="image",
    default_base_model="stable-diffusion-v1-5/stable-diffusion-v1-5",
    pipeline_class="StableDiffusionPipeline",
    default_resolution=512,
    min_resolution=256,
    max_resolution=1024,
    size_multiple=64,
    prediction="scheduler",
    default_guidance_scale=7.5,
)

FAMILY = StableDiffusionFamily(SPEC)
