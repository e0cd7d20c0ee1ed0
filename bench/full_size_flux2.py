"""FLUX.2 [dev] and [klein] full-size configs for bench/full_size.py (random weights, no download).

Transformer fields as in black-forest-labs/FLUX.2-dev and FLUX.2-klein-base-4B/-9B
``transformer/config.json``, the same as diffusers' ``scripts/convert_flux2_to_diffusers.py``
writes them (the diffusers Flux2Transformer2DModel defaults are dev's; klein
4B: 24 heads, 5 double + 20 single blocks, 7680 = 3 x 2560 text width; 9B: 32 heads, 8 + 24,
12288; no guidance input). VAE: AutoencoderKLFlux2's defaults (32 latent channels, batch norm
over the 128 patchified ones). Text encoders: Mistral-Small-3.1-24B (Mistral3 with a Pixtral
vision tower) and Qwen3-4B / Qwen3-8B ``config.json`` architecture fields. The BFL sizes: dev
"32B" transformer + "24B" Mistral; klein "4B" and "9B" with Qwen3-4B (4.0B) / Qwen3-8B (8.2B).
The 4B's name is rounded: its architecture counts 3.88B transformer parameters.
"""

from __future__ import annotations

from typing import Any

from bench.full_size_qwen import QWEN3_4B  # Z-Image's text encoder is klein 4B's too

FLUX2_DEV_TRANSFORMER: dict[str, Any] = {}  # Flux2Transformer2DModel's defaults are FLUX.2-dev
FLUX2_KLEIN_4B_TRANSFORMER = {
    "num_attention_heads": 24,
    "num_layers": 5,
    "num_single_layers": 20,
    "joint_attention_dim": 7680,
    "guidance_embeds": False,
}
FLUX2_KLEIN_9B_TRANSFORMER = {
    "num_attention_heads": 32,
    "num_layers": 8,
    "num_single_layers": 24,
    "joint_attention_dim": 12288,
    "guidance_embeds": False,
}
MISTRAL_SMALL_3_TEXT = {
    "vocab_size": 131072,
    "hidden_size": 5120,
    "intermediate_size": 32768,
    "num_hidden_layers": 40,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-05,
    "rope_theta": 1000000000.0,
    "tie_word_embeddings": False,
}
PIXTRAL_VISION = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "head_dim": 64,
    "image_size": 1540,
    "patch_size": 14,
}
QWEN3_8B = {**QWEN3_4B, "hidden_size": 4096, "intermediate_size": 12288}
QWEN3_8B["tie_word_embeddings"] = False
PUBLISHED_PARAMS = {  # millions, as BFL and the text encoders' model cards state them
    # klein 4B's transformer is published only as "~4B" (BFL, NVIDIA's model card); its
    # architecture counts 3875.5M, so it is the one row bench/full_size.py reports 3.1% off.
    "flux2-dev": {"transformer": 32000.0, "text_encoder": 24000.0},
    "flux2-klein": {"transformer": 4000.0, "text_encoder": 4020.0},  # Qwen3-4B: 4.02B
    "flux2-klein-9b": {"transformer": 9000.0, "text_encoder": 8200.0},
}


def flux2_dev(host: Any) -> Any:
    """Flux2Pipeline at full size; ``host`` builds the scheduler on the CPU."""
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2Pipeline,
        Flux2Transformer2DModel,
    )
    from diffusers.pipelines.flux2.system_messages import SYSTEM_MESSAGE
    from transformers import (
        Mistral3Config,
        Mistral3ForConditionalGeneration,
        MistralConfig,
        PixtralVisionConfig,
    )

    from training.models.flux2_family import flux2_scheduler
    from training.models.tiny_mistral import build_toy_mistral_tokenizer

    config = Mistral3Config(
        text_config=MistralConfig(**MISTRAL_SMALL_3_TEXT),
        vision_config=PixtralVisionConfig(**PIXTRAL_VISION),
        spatial_merge_size=2,
        multimodal_projector_bias=False,
        tie_word_embeddings=False,
    )
    return Flux2Pipeline(
        scheduler=host(FlowMatchEulerDiscreteScheduler, flux2_scheduler().config),
        vae=AutoencoderKLFlux2(),
        text_encoder=Mistral3ForConditionalGeneration(config),
        tokenizer=build_toy_mistral_tokenizer((SYSTEM_MESSAGE,), 512),
        transformer=Flux2Transformer2DModel(**FLUX2_DEV_TRANSFORMER),
    )


def flux2_klein(host: Any, nine_b: bool = False) -> Any:
    """Flux2KleinPipeline at full size: base 4B (the default) or 9B."""
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from training.models.flux2_family import flux2_scheduler
    from training.models.tiny_qwen import build_toy_qwen_tokenizer

    transformer = FLUX2_KLEIN_9B_TRANSFORMER if nine_b else FLUX2_KLEIN_4B_TRANSFORMER
    return Flux2KleinPipeline(
        scheduler=host(FlowMatchEulerDiscreteScheduler, flux2_scheduler().config),
        vae=AutoencoderKLFlux2(),
        text_encoder=Qwen3ForCausalLM(Qwen3Config(**(QWEN3_8B if nine_b else QWEN3_4B))),
        tokenizer=build_toy_qwen_tokenizer(max_length=512),
        transformer=Flux2Transformer2DModel(**transformer),
        is_distilled=False,
    )
