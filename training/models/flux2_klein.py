"""FLUX.2 [klein] base: the 4B/9B FLUX.2 transformer conditioned on Qwen3, trained with CFG.

Flux2KleinPipeline (diffusers 0.42.1 ``pipelines/flux2/pipeline_flux2_klein.py``): prompts go
through Qwen3's chat template (thinking off) and layers 9, 18 and 27 of Qwen3ForCausalLM are
stacked; no guidance input; samples use real classifier-free guidance against the empty
prompt. Shared training code is in ``flux2_family.py``.

Default base: ``FLUX.2-klein-base-4B``, the undistilled 4B. musubi-tuner (docs/flux_2.md)
recommends the base models for training (the 4-step klein 4B/9B are distilled for inference),
ai-toolkit and DiffSynth-Studio ship base-4B recipes, it is Apache-2.0 (the 9B is under the
FLUX non-commercial licence, which Attune's customers could not use for paid work) and it
trains on the 24 GB class with room to spare. The 9B loads through the same code
(``ATTUNE_MODEL_FLUX2_KLEIN=black-forest-labs/FLUX.2-klein-base-9B``).
"""

from __future__ import annotations

from pathlib import Path

from training.models.base import FamilySpec, LoadedModel, SampleRequest
from training.models.flux2_family import Flux2Family

SPEC = FamilySpec.from_catalogue(
    "flux2-klein",
    pipeline_class="Flux2KleinPipeline",
    prediction="flow_matching",
    flow_shift=None,  # resolution-dependent, see flux2_family
    default_guidance_scale=4.0,  # klein base: CFG 4.0, 50 steps (BFL, musubi-tuner)
)
QWEN3_LAYERS = 27  # the pipeline stacks hidden states 9, 18 and 27


class Flux2KleinFamily(Flux2Family):
    """FLUX.2 [klein] base LoRA training: Flux2KleinPipeline with a Qwen3 text encoder."""

    spec = SPEC
    pipeline_class_name = "Flux2KleinPipeline"

    def _pipeline_kwargs(self, model: LoadedModel, request: SampleRequest) -> dict[str, object]:
        """CFG against the cached empty prompt; without it (or for a distilled model) none."""
        guidance = request.guidance_scale
        if guidance is None:
            guidance = self.spec.default_guidance_scale
        kwargs: dict[str, object] = {
            "prompt_embeds": request.embeds["prompt_embeds"].to(model.device, model.dtype)
        }
        if request.negative_embeds is None or model.pipeline.config.is_distilled:
            guidance = 1.0  # CFG would re-encode "" with the text encoder, gone by now
        else:
            negative = request.negative_embeds["prompt_embeds"]
            kwargs["negative_prompt_embeds"] = negative.to(model.device, model.dtype)
        return {**kwargs, "guidance_scale": guidance}

    def make_tiny(self, out_dir: Path) -> Path:
        """Tiny random klein pipeline: toy Qwen3 (27 layers, 16 wide), calibrated VAE, 2 blocks."""
        import torch
        from diffusers import Flux2KleinPipeline
        from transformers import Qwen3Config, Qwen3ForCausalLM

        from training.models.flux2_family import (
            flux2_scheduler,
            tiny_flux2_transformer,
            tiny_flux2_vae,
        )
        from training.models.tiny_parts import TINY_SEED
        from training.models.tiny_qwen import build_toy_qwen_tokenizer, tiny_qwen_text_kwargs

        torch.manual_seed(TINY_SEED)
        tokenizer = build_toy_qwen_tokenizer(max_length=64)
        text = tiny_qwen_text_kwargs(len(tokenizer), hidden_size=16)
        config = Qwen3Config(**{**text, "num_hidden_layers": QWEN3_LAYERS})
        text_encoder = Qwen3ForCausalLM(config)
        pipe = Flux2KleinPipeline(
            scheduler=flux2_scheduler(),
            vae=tiny_flux2_vae(),
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            transformer=tiny_flux2_transformer(config.hidden_size, guidance_embeds=False),
            is_distilled=False,
        )
        pipe.save_pretrained(str(out_dir), safe_serialization=True)
        return out_dir


FAMILY = Flux2KleinFamily()
