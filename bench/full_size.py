"""Full-size pipelines with random weights, built from the published model configs (no download).

The dicts below reproduce the architecture fields of each model's public ``config.json`` on the
Hugging Face hub (weights are never fetched): stable-diffusion-v1-5/stable-diffusion-v1-5,
stabilityai/stable-diffusion-xl-base-1.0, black-forest-labs/FLUX.1-dev and
Wan-AI/Wan2.1-T2V-1.3B-Diffusers; ``bench/full_size_qwen.py`` holds Qwen-Image's and Z-Image
Turbo's, ``bench/full_size_flux2.py`` FLUX.2 [dev]'s and [klein]'s, ``bench/full_size_video.py``
Wan 2.2's (TI2V 5B, T2V A14B) and LTX-2's. Tokenizers are the offline toy ones padded to the
real sequence lengths (77 CLIP tokens, 512 T5 tokens, 1024 Gemma tokens): compute depends on the
length, not the vocab.

``python bench/full_size.py [family ...]`` builds each on the meta device and prints parameter
counts next to the published sizes without allocating memory; it exits 1 when one is more than
1% off.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import full_size_flux2, full_size_qwen, full_size_video  # noqa: E402

_ENC4 = ["DownEncoderBlock2D"] * 4
_DEC4 = ["UpDecoderBlock2D"] * 4

SD15_UNET = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
}
SD_VAE = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": _ENC4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 512,
    "scaling_factor": 0.18215,
    "up_block_types": _DEC4,
}
CLIP_L = {  # openai/clip-vit-large-patch14 text tower (SD 1.5, SDXL and FLUX text_encoder)
    "hidden_act": "quick_gelu",
    "hidden_size": 768,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "projection_dim": 768,
    "vocab_size": 49408,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}
CLIP_BIGG = {  # SDXL text_encoder_2: OpenCLIP ViT-bigG/14 text tower, with projection
    **CLIP_L,
    "hidden_act": "gelu",
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_attention_heads": 20,
    "num_hidden_layers": 32,
    "projection_dim": 1280,
}
SDXL_UNET = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "sample_size": 128,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "use_linear_projection": True,
}
SDXL_VAE = {**SD_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True}
FLUX_TRANSFORMER = {
    "attention_head_dim": 128,
    "axes_dims_rope": [16, 56, 56],
    "guidance_embeds": True,
    "in_channels": 64,
    "joint_attention_dim": 4096,
    "num_attention_heads": 24,
    "num_layers": 19,
    "num_single_layers": 38,
    "patch_size": 1,
    "pooled_projection_dim": 768,
}
FLUX_VAE = {
    **SD_VAE,
    "force_upcast": True,
    "latent_channels": 16,
    "mid_block_add_attention": True,
    "sample_size": 1024,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_post_quant_conv": False,
    "use_quant_conv": False,
}
T5_XXL = {  # google/t5-v1_1-xxl encoder (FLUX text_encoder_2)
    "d_ff": 10240,
    "d_kv": 64,
    "d_model": 4096,
    "dense_act_fn": "gelu_new",
    "feed_forward_proj": "gated-gelu",
    "is_gated_act": True,
    "layer_norm_epsilon": 1e-06,
    "num_heads": 64,
    "num_layers": 24,
    "relative_attention_max_distance": 128,
    "relative_attention_num_buckets": 32,
    "tie_word_embeddings": False,
    "vocab_size": 32128,
}
UMT5_XXL = {**T5_XXL, "vocab_size": 256384}  # google/umt5-xxl encoder (Wan text_encoder)
WAN_1_3B_TRANSFORMER = {
    "added_kv_proj_dim": None,
    "attention_head_dim": 128,
    "cross_attn_norm": True,
    "eps": 1e-06,
    "ffn_dim": 8960,
    "freq_dim": 256,
    "image_dim": None,
    "in_channels": 16,
    "num_attention_heads": 12,
    "num_layers": 30,
    "out_channels": 16,
    "patch_size": [1, 2, 2],
    "qk_norm": "rms_norm_across_heads",
    "rope_max_seq_len": 1024,
    "text_dim": 4096,
}
WAN_VAE = {
    "attn_scales": [],
    "base_dim": 96,
    "dim_mult": [1, 2, 4, 4],
    "dropout": 0.0,
    "latents_mean": [
        *(-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508),
        *(0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921),
    ],
    "latents_std": [
        *(2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743),
        *(3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.916),
    ],
    "num_res_blocks": 2,
    "temperal_downsample": [False, True, True],
    "z_dim": 16,
}
SD_SCHEDULER = {  # PNDMScheduler in SD 1.5; the trainer builds its DDPM from this config
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
}
SDXL_SCHEDULER = {
    **SD_SCHEDULER,
    "interpolation_type": "linear",
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
    "use_karras_sigmas": False,
}
FLUX_SCHEDULER = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 4096,
    "max_shift": 1.15,
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
}
WAN_SCHEDULER = {
    "flow_shift": 3.0,
    "num_train_timesteps": 1000,
    "prediction_type": "flow_prediction",
    "solver_order": 2,
    "use_flow_sigmas": True,
}
PUBLISHED_PARAMS = {  # millions, as published, for the meta-device check
    "sd15": {"unet": 859.5, "vae": 83.7, "text_encoder": 123.1},
    "sdxl": {"unet": 2567.5, "vae": 83.7, "text_encoder": 123.1, "text_encoder_2": 694.7},
    "flux-dev": {
        "transformer": 11901.4,
        "vae": 83.8,
        "text_encoder": 123.1,
        "text_encoder_2": 4762.3,
    },
    "wan21-t2v-1.3b": {},
    **full_size_qwen.PUBLISHED_PARAMS,
    **full_size_flux2.PUBLISHED_PARAMS,
    **full_size_video.PUBLISHED_PARAMS,
}


def _sd15() -> Any:
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from training.models.tiny_parts import build_toy_clip_tokenizer

    return StableDiffusionPipeline(
        vae=AutoencoderKL.from_config(SD_VAE),
        text_encoder=CLIPTextModel(CLIPTextConfig(**CLIP_L)),
        tokenizer=build_toy_clip_tokenizer(),
        unet=UNet2DConditionModel.from_config(SD15_UNET),
        scheduler=_host(PNDMScheduler, SD_SCHEDULER),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _sdxl() -> Any:
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from training.models.tiny_parts import build_toy_clip_tokenizer

    return StableDiffusionXLPipeline(
        vae=AutoencoderKL.from_config(SDXL_VAE),
        text_encoder=CLIPTextModel(CLIPTextConfig(**CLIP_L)),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_BIGG)),
        tokenizer=build_toy_clip_tokenizer(),
        tokenizer_2=build_toy_clip_tokenizer(),
        unet=UNet2DConditionModel.from_config(SDXL_UNET),
        scheduler=_host(EulerDiscreteScheduler, SDXL_SCHEDULER),
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )


def _flux() -> Any:
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from training.models.tiny_parts import build_toy_clip_tokenizer
    from training.models.tiny_t5 import build_toy_t5_tokenizer

    return FluxPipeline(
        scheduler=_host(FlowMatchEulerDiscreteScheduler, FLUX_SCHEDULER),
        vae=AutoencoderKL.from_config(FLUX_VAE),
        text_encoder=CLIPTextModel(CLIPTextConfig(**CLIP_L)),
        tokenizer=build_toy_clip_tokenizer(),
        text_encoder_2=T5EncoderModel(T5Config(**T5_XXL)),
        tokenizer_2=build_toy_t5_tokenizer(max_length=512),
        transformer=FluxTransformer2DModel.from_config(FLUX_TRANSFORMER),
    )


def _wan() -> Any:
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    from training.models.tiny_t5 import build_toy_t5_tokenizer

    return WanPipeline(
        tokenizer=build_toy_t5_tokenizer(max_length=512),
        text_encoder=UMT5EncoderModel(UMT5Config(**UMT5_XXL)),
        vae=AutoencoderKLWan.from_config(WAN_VAE),
        scheduler=_host(UniPCMultistepScheduler, WAN_SCHEDULER),
        transformer=WanTransformer3DModel.from_config(WAN_1_3B_TRANSFORMER),
    )


def _host(scheduler_class: Any, config: dict[str, Any]) -> Any:
    """Schedulers keep fp32 tables on the CPU whatever device the models are built on."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        with torch.device("cpu"):
            return scheduler_class.from_config(config)
    finally:
        torch.set_default_dtype(previous)


BUILDERS: dict[str, Callable[[], Any]] = {
    "sd15": _sd15,
    "sdxl": _sdxl,
    "flux-dev": _flux,
    "wan21-t2v-1.3b": _wan,
    "qwen-image": full_size_qwen.build_qwen_image,
    "z-image": full_size_qwen.build_z_image,
    "flux2-dev": lambda: full_size_flux2.flux2_dev(_host),
    "flux2-klein": lambda: full_size_flux2.flux2_klein(_host),
    # Not a family of its own: the 9B base the flux2-klein family also loads (size check only).
    "flux2-klein-9b": lambda: full_size_flux2.flux2_klein(_host, nine_b=True),
    **full_size_video.BUILDERS,
}


def build_pipeline(family: str, device: Any, dtype: Any) -> Any:
    """The family's full-size pipeline, random weights created directly on device in dtype."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            pipe = BUILDERS[family]()
    finally:
        torch.set_default_dtype(previous)
    if str(device) != "meta":
        pipe.to(device, dtype)
    return pipe


def build_loaded(family: str, device: Any, dtype: Any) -> Any:
    """build_pipeline as the trainer's LoadedModel: frozen, eval, progress bars off."""
    from training.models.base import LoadedModel

    pipe = build_pipeline(family, device, dtype)
    for name, module in pipe.components.items():
        if hasattr(module, "requires_grad_") and name != "scheduler":
            module.requires_grad_(False)
            module.eval()
    pipe.set_progress_bar_config(disable=True)
    return LoadedModel(pipe, dtype, device, source=f"random:{family}")


def parameter_counts(family: str) -> dict[str, float]:
    """Millions of parameters per component, built on the meta device."""
    import torch

    pipe = build_pipeline(family, "meta", torch.float32)
    counts = {}
    for name, module in pipe.components.items():
        if hasattr(module, "parameters"):
            counts[name] = round(sum(p.numel() for p in module.parameters()) / 1e6, 1)
    return counts


def main() -> int:
    """Print parameter counts next to the published ones; non-zero exit if one is 1% off."""
    families = sys.argv[1:] or list(BUILDERS)
    off = 0
    for family in families:
        counts = parameter_counts(family)
        published = PUBLISHED_PARAMS[family]
        for name, millions in counts.items():
            print(
                f"{family:16} {name:16} {millions:9.1f}M  {_versus(millions, published.get(name))}"
            )
            off += bool(published.get(name)) and abs(millions / published[name] - 1) > 0.01
        if family in full_size_video.PUBLISHED_DENOISERS:  # e.g. A14B: both experts together
            parts, size = full_size_video.PUBLISHED_DENOISERS[family]
            total = sum(counts[part] for part in parts)
            print(f"{family:16} {'+'.join(parts):16} {total:9.1f}M  {_versus(total, size)}")
            off += abs(total / size - 1) > 0.01
    return 1 if off else 0


def _versus(millions: float, published: float | None) -> str:
    """'published 20400.0 (+0.15%)', or 'published -' where no figure is known."""
    if not published:
        return "published -"
    return f"published {published:.1f} ({millions / published - 1:+.2%})"


if __name__ == "__main__":
    raise SystemExit(main())
