"""Full-size configs of the Qwen-encoder image families (Qwen-Image, Z-Image Turbo), no download.

The dicts reproduce the architecture fields of each public ``config.json`` on the Hugging Face
hub: Qwen/Qwen-Image (``transformer/``, ``vae/``, ``scheduler/``; its ``text_encoder/`` is
Qwen/Qwen2.5-VL-7B-Instruct) and Tongyi-MAI/Z-Image-Turbo (``transformer/``, ``vae/``,
``scheduler/``; ``text_encoder/`` is Qwen/Qwen3-4B). ``bench/full_size.py`` registers the
builders; tokenizers are the offline toy ones, which is all a parameter count or a speed run
needs (compute depends on the sequence length, not the vocabulary).
"""

from __future__ import annotations

from typing import Any

QWEN_IMAGE_TRANSFORMER = {
    "attention_head_dim": 128,
    "axes_dims_rope": [16, 56, 56],
    "guidance_embeds": False,
    "in_channels": 64,
    "joint_attention_dim": 3584,
    "num_attention_heads": 24,
    "num_layers": 60,
    "out_channels": 16,
    "patch_size": 2,
}
QWEN_IMAGE_VAE = {  # Wan 2.1's causal video VAE, with its latent statistics
    "attn_scales": [],
    "base_dim": 96,
    "dim_mult": [1, 2, 4, 4],
    "dropout": 0.0,
    "num_res_blocks": 2,
    "temperal_downsample": [False, True, True],
    "z_dim": 16,
}
QWEN25_VL_7B = {  # Qwen/Qwen2.5-VL-7B-Instruct config.json
    "text_config": {
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "max_position_embeddings": 128000,
        "rms_norm_eps": 1e-6,
        "vocab_size": 152064,
        "tie_word_embeddings": False,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1000000.0,
            "mrope_section": [16, 24, 24],
        },
    },
    "vision_config": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
    },
}
Z_IMAGE_TRANSFORMER = {
    "all_f_patch_size": [1],
    "all_patch_size": [2],
    "axes_dims": [32, 48, 48],
    "axes_lens": [1536, 512, 512],
    "cap_feat_dim": 2560,
    "dim": 3840,
    "in_channels": 16,
    "n_heads": 30,
    "n_kv_heads": 30,
    "n_layers": 30,
    "n_refiner_layers": 2,
    "norm_eps": 1e-05,
    "qk_norm": True,
    "rope_theta": 256.0,
    "t_scale": 1000.0,
}
QWEN3_4B = {  # Qwen/Qwen3-4B config.json (Z-Image loads the bare Qwen3Model)
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 40960,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
    "vocab_size": 151936,
}
Z_IMAGE_SCHEDULER = {"num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": False}
PUBLISHED_PARAMS = {  # millions, at the precision published (hub model pages, bf16 file sizes)
    # Qwen-Image transformer 20.4B (40.9 GB of bf16 shards); Qwen2.5-VL-7B-Instruct 8.29B.
    "qwen-image": {"transformer": 20400.0, "text_encoder": 8290.0},
    # Z-Image-Turbo transformer 6.15B (12.3 GB bf16); Qwen3-4B 4.02B; FLUX.1's VAE 83.8M.
    "z-image": {"transformer": 6150.0, "vae": 83.8, "text_encoder": 4020.0},
}


def build_qwen_image() -> Any:
    """QwenImagePipeline at full size with random weights."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from bench.full_size import _host
    from training.models.qwen_image import QWEN_IMAGE_SCHEDULER
    from training.models.tiny_qwen import build_toy_qwen_tokenizer

    return QwenImagePipeline(
        scheduler=_host(FlowMatchEulerDiscreteScheduler, QWEN_IMAGE_SCHEDULER),
        vae=AutoencoderKLQwenImage.from_config(QWEN_IMAGE_VAE),
        text_encoder=Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**QWEN25_VL_7B)),
        tokenizer=build_toy_qwen_tokenizer(),
        transformer=QwenImageTransformer2DModel.from_config(QWEN_IMAGE_TRANSFORMER),
    )


def build_z_image() -> Any:
    """ZImagePipeline (Turbo) at full size with random weights."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        ZImagePipeline,
        ZImageTransformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3Model

    from bench.full_size import FLUX_VAE, _host
    from training.models.tiny_qwen import build_toy_qwen_tokenizer

    return ZImagePipeline(
        scheduler=_host(FlowMatchEulerDiscreteScheduler, Z_IMAGE_SCHEDULER),
        vae=AutoencoderKL.from_config(FLUX_VAE),
        text_encoder=Qwen3Model(Qwen3Config(**QWEN3_4B)),
        tokenizer=build_toy_qwen_tokenizer(max_length=512),
        transformer=ZImageTransformer2DModel.from_config(Z_IMAGE_TRANSFORMER),
    )
