"""Wan 2.2 TI2V 5B: one dense transformer over the Wan 2.2 VAE's 48-channel latents.

Follows diffusers 0.42.1 ``pipelines/wan/pipeline_wan.py`` and the Wan 2.2 conversion in
``scripts/convert_wan_to_diffusers.py``: ``AutoencoderKLWan`` with ``is_residual``, a 2x2 pixel
patchify and 16x spatial / 4x temporal compression (4k+1 frames -> k+1 latent frames), latents
normalised with the config's 48 ``latents_mean``/``latents_std``, the transformer patching
1x2x2 (so sizes are multiples of 32), UniPC with ``flow_shift`` 5.0, 24 fps, up to 121 frames.

Training is Wan 2.1's (``training/models/wan.py``): rectified flow with the scheduler's shift on
logit-normal sigmas, target ``noise - latents``, every linear of each block (musubi-tuner's
and ai-toolkit's Wan targets). The pipeline's ``expand_timesteps`` gives each latent token its
own timestep so TI2V can keep the first frame clean; a text-to-video LoRA noises every token
equally, and one timestep per item is the same computation (tests/training/test_wan22.py checks
it) without the per-token modulation tensors. Image-to-video first-frame conditioning is not
trained. Export: the ComfyUI file uses the original checkpoint's names (``diffusion_model.
blocks.N.self_attn.q``...), which ComfyUI loads for Wan 2.2 like Wan 2.1 (comfy/lora.py maps
every ``diffusion_model.`` weight).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.errors import ModelLoadError
from training.models.base import FamilySpec
from training.models.wan import WanFamily, save_tiny_wan

SPEC = FamilySpec.from_catalogue(
    "wan22-ti2v-5b",
    pipeline_class="WanPipeline",
    prediction="flow_matching",
    flow_shift=5.0,  # the TI2V scheduler's flow_shift; the loaded config wins when it has one
    default_guidance_scale=5.0,
)
TINY_LATENT_CHANNELS = 8


class Wan22Ti2vFamily(WanFamily):
    """Wan 2.2 TI2V 5B text-to-video LoRA: WanPipeline with the Wan 2.2 VAE."""

    spec = SPEC

    def _check_layout(self, location: str, source: str) -> None:
        """A local folder must be a Wan 2.2 TI2V pipeline (per-token timesteps), not Wan 2.1."""
        super()._check_layout(location, source)
        index = local_model_index(location)
        if index is not None and index.get("expand_timesteps") is not True:
            raise ModelLoadError(
                f"{source!r} is not a Wan 2.2 TI2V pipeline (no expand_timesteps in its "
                "model_index.json; Wan 2.1 and A14B folders lack it)"
            )

    def make_tiny(self, out_dir: Path) -> Path:
        """Tiny random Wan 2.2 5B pipeline: toy umT5, residual 16x VAE, 2 blocks, calibrated."""
        return save_tiny_wan(out_dir, tiny_wan22_vae, flow_shift=5.0, expand_timesteps=True)


def local_model_index(location: str) -> dict[str, Any] | None:
    """A local folder's model_index.json (None for a hub id; from_pretrained checks those).

    Wan 2.1, Wan 2.2 TI2V and Wan 2.2 A14B folders are all ``WanPipeline``s; its fields tell
    them apart.
    """
    index = Path(location) / "model_index.json"
    return json.loads(index.read_text(encoding="utf-8")) if index.is_file() else None


def tiny_wan22_vae() -> Any:
    """The Wan 2.2 VAE's layout (residual, 2x2 patchify, 16x/4x) at toy width, calibrated."""
    from diffusers import AutoencoderKLWan

    from training.models.tiny_parts import calibrate_channels, calibration_clip

    vae = AutoencoderKLWan(
        base_dim=8,
        decoder_base_dim=8,
        z_dim=TINY_LATENT_CHANNELS,
        dim_mult=[1, 1, 1, 1],  # three downsamplings (8x) after the 2x2 patchify: 16x
        num_res_blocks=1,
        temperal_downsample=[False, True, True],  # 4x in time
        is_residual=True,
        in_channels=12,  # 3 colours x 2x2 patch
        out_channels=12,
        patch_size=2,
        scale_factor_temporal=4,
        scale_factor_spatial=16,
        latents_mean=[0.0] * TINY_LATENT_CHANNELS,  # measured below
        latents_std=[1.0] * TINY_LATENT_CHANNELS,
    )
    return calibrate_channels(vae, calibration_clip(9, 128))


FAMILY = Wan22Ti2vFamily()
