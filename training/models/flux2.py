"""FLUX.2 [dev]: the 32B FLUX.2 transformer conditioned on Mistral Small 3.1, guidance-distilled.

Flux2Pipeline (diffusers 0.42.1 ``pipelines/flux2/pipeline_flux2.py``): prompts are laid out
with the pipeline's system message through the tokenizer's chat template and layers 10, 20 and
30 of Mistral3ForConditionalGeneration are stacked (15360 wide); the guidance input is set to
1.0 while training (diffusers README_flux2.md, SimpleTuner's FLUX2 quickstart) and to the
sampling guidance (4.0) for samples. Shared training code is in ``flux2_family.py``.

The 24B text encoder and the 32B transformer never share the GPU: the loader stages the
transformer on the CPU until the prompt embeddings are cached (training/quantize.py).
"""

from __future__ import annotations

from pathlib import Path

from training.models.base import FamilySpec, LoadedModel, SampleRequest
from training.models.flux2_family import Flux2Family

SPEC = FamilySpec.from_catalogue(
    "flux2-dev",
    pipeline_class="Flux2Pipeline",
    prediction="flow_matching",
    flow_shift=None,  # resolution-dependent, see flux2_family
    default_guidance_scale=4.0,  # the pipeline's default embedded guidance
)
MISTRAL_LAYERS = 30  # the pipeline stacks hidden states 10, 20 and 30


class Flux2DevFamily(Flux2Family):
    """FLUX.2 [dev] LoRA training: Flux2Pipeline with a Mistral 3 text encoder."""

    spec = SPEC
    pipeline_class_name = "Flux2Pipeline"

    def _pipeline_kwargs(self, model: LoadedModel, request: SampleRequest) -> dict[str, object]:
        """Guidance goes to the guidance input (distilled); no negative prompt."""
        guidance = request.guidance_scale
        if guidance is None:
            guidance = self.spec.default_guidance_scale
        embeds = request.embeds["prompt_embeds"].to(model.device, model.dtype)
        return {"prompt_embeds": embeds, "guidance_scale": guidance}

    def make_tiny(self, out_dir: Path) -> Path:
        """Tiny random dev pipeline: toy Mistral 3 (30 layers, 16 wide), calibrated VAE, 2 blocks.

        The toy tokenizer is trained on the pipeline's own system message too (tiny_mistral.py),
        so the message plus a prompt fits its 512 tokens as it fits Mistral's.
        """
        import torch
        from diffusers import Flux2Pipeline
        from diffusers.pipelines.flux2.system_messages import SYSTEM_MESSAGE

        from training.models.flux2_family import (
            MAX_TEXT_TOKENS,
            flux2_scheduler,
            tiny_flux2_transformer,
            tiny_flux2_vae,
        )
        from training.models.tiny_mistral import build_toy_mistral_tokenizer, tiny_mistral3
        from training.models.tiny_parts import TINY_SEED

        torch.manual_seed(TINY_SEED)
        tokenizer = build_toy_mistral_tokenizer((SYSTEM_MESSAGE,), MAX_TEXT_TOKENS)
        image_token = tokenizer.convert_tokens_to_ids("[IMG]")
        text_encoder = tiny_mistral3(len(tokenizer), image_token, MISTRAL_LAYERS, hidden_size=16)
        pipe = Flux2Pipeline(
            scheduler=flux2_scheduler(),
            vae=tiny_flux2_vae(),
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            transformer=tiny_flux2_transformer(16, guidance_embeds=True),
        )
        pipe.save_pretrained(str(out_dir), safe_serialization=True)
        return out_dir


FAMILY = Flux2DevFamily()
