"""Full-size Wan 2.2 (TI2V 5B, T2V A14B) and LTX-2 pipelines from their published configs.

The architecture fields are those of the diffusers repos' ``config.json`` files
(Wan-AI/Wan2.2-TI2V-5B-Diffusers, Wan-AI/Wan2.2-T2V-A14B-Diffusers, Lightricks/LTX-2), as
diffusers' own converters (``scripts/convert_wan_to_diffusers.py``: "Wan2.2-TI2V-5B",
"Wan2.2-T2V-A14B", ``vae22_diffusers_config``; ``scripts/convert_ltx2_to_diffusers.py``:
version "2.0") write them, and google/gemma-3-12b's (LTX-2's text encoder). Weights are random,
nothing is downloaded; ``bench/full_size.py`` registers these builders next to the others.
"""

from __future__ import annotations

from typing import Any

_WAN_BLOCK = {
    "added_kv_proj_dim": None,
    "attention_head_dim": 128,
    "cross_attn_norm": True,
    "eps": 1e-06,
    "freq_dim": 256,
    "image_dim": None,
    "patch_size": [1, 2, 2],
    "qk_norm": "rms_norm_across_heads",
    "rope_max_seq_len": 1024,
    "text_dim": 4096,
}
WAN22_5B_TRANSFORMER = {
    **_WAN_BLOCK,
    "ffn_dim": 14336,
    "in_channels": 48,
    "num_attention_heads": 24,
    "num_layers": 30,
    "out_channels": 48,
}
WAN22_14B_EXPERT = {  # each of A14B's two experts (transformer, transformer_2)
    **_WAN_BLOCK,
    "ffn_dim": 13824,
    "in_channels": 16,
    "num_attention_heads": 40,
    "num_layers": 40,
    "out_channels": 16,
}
WAN22_VAE = {
    "base_dim": 160,
    "decoder_base_dim": 256,
    "z_dim": 48,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
    "dropout": 0.0,
    "is_residual": True,
    "in_channels": 12,
    "out_channels": 12,
    "patch_size": 2,
    "scale_factor_temporal": 4,
    "scale_factor_spatial": 16,
    "latents_mean": [
        *(-0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557),
        *(-0.1382, 0.0542, 0.2813, 0.0891, 0.1570, -0.0098, 0.0375, -0.1825),
        *(-0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502),
        *(-0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230),
        *(-0.0313, -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.0520, 0.3748),
        *(0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667),
    ],
    "latents_std": [
        *(0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013),
        *(0.8158, 1.0344, 0.5894, 1.0901, 0.6885, 0.6165, 0.8454, 0.4978),
        *(0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659),
        *(0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093),
        *(0.5709, 0.6065, 0.6415, 0.4944, 0.5726, 1.2042, 0.5458, 1.6887),
        *(0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744),
    ],
}
LTX2_TRANSFORMER = {
    "in_channels": 128,
    "out_channels": 128,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 32,
    "attention_head_dim": 128,
    "cross_attention_dim": 4096,
    "vae_scale_factors": [8, 32, 32],
    "pos_embed_max_pos": 20,
    "base_height": 2048,
    "base_width": 2048,
    "audio_in_channels": 128,
    "audio_out_channels": 128,
    "audio_num_attention_heads": 32,
    "audio_attention_head_dim": 64,
    "audio_cross_attention_dim": 2048,
    "audio_scale_factor": 4,
    "audio_pos_embed_max_pos": 20,
    "audio_sampling_rate": 16000,
    "audio_hop_length": 160,
    "num_layers": 48,
    "caption_channels": 3840,
    "rope_theta": 10000.0,
    "rope_double_precision": True,
    "timestep_scale_multiplier": 1000,
    "cross_attn_timestep_scale_multiplier": 1000,
    "rope_type": "split",
}
LTX2_CONNECTORS = {
    "caption_channels": 3840,
    "text_proj_in_factor": 49,  # Gemma 3 12B: 48 layers + the embeddings
    "video_connector_num_attention_heads": 30,
    "video_connector_attention_head_dim": 128,
    "video_connector_num_layers": 2,
    "video_connector_num_learnable_registers": 128,
    "audio_connector_num_attention_heads": 30,
    "audio_connector_attention_head_dim": 128,
    "audio_connector_num_layers": 2,
    "audio_connector_num_learnable_registers": 128,
    "connector_rope_base_seq_len": 4096,
    "rope_type": "split",
}
LTX2_VAE = {
    "latent_channels": 128,
    "block_out_channels": [256, 512, 1024, 2048],
    "decoder_block_out_channels": [256, 512, 1024],
    "layers_per_block": [4, 6, 6, 2, 2],
    "decoder_layers_per_block": [5, 5, 5, 5],
    "downsample_type": ["spatial", "temporal", "spatiotemporal", "spatiotemporal"],
    "upsample_type": ["spatiotemporal", "spatiotemporal", "spatiotemporal"],
    "upsample_residual": [True, True, True],
    "upsample_factor": [2, 2, 2],
    "patch_size": 4,
    "encoder_causal": True,
    "decoder_causal": False,
    "spatial_compression_ratio": 32,
    "temporal_compression_ratio": 8,
}
LTX2_AUDIO_VAE = {
    "base_channels": 128,
    "output_channels": 2,
    "ch_mult": [1, 2, 4],
    "num_res_blocks": 2,
    "attn_resolutions": None,
    "in_channels": 2,
    "resolution": 256,
    "latent_channels": 8,
    "norm_type": "pixel",
    "causality_axis": "height",
    "mid_block_add_attention": False,
    "sample_rate": 16000,
    "mel_hop_length": 160,
    "is_causal": True,
    "mel_bins": 64,
}
LTX2_VOCODER = {
    "in_channels": 128,
    "hidden_channels": 1024,
    "out_channels": 2,
    "upsample_kernel_sizes": [16, 15, 8, 4, 4],
    "upsample_factors": [6, 5, 2, 2, 2],
    "resnet_kernel_sizes": [3, 7, 11],
    "resnet_dilations": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "leaky_relu_negative_slope": 0.1,
    "output_sampling_rate": 24000,
}
GEMMA3_12B = {  # google/gemma-3-12b text tower and its SigLIP vision tower
    "text_config": {
        "hidden_size": 3840,
        "intermediate_size": 15360,
        "num_hidden_layers": 48,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 256,
        "vocab_size": 262208,
        "sliding_window": 1024,
        "query_pre_attn_scalar": 256,
    },
    "vision_config": {
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "image_size": 896,
        "patch_size": 14,
        "vision_use_head": False,
    },
    "mm_tokens_per_image": 256,
}
# Millions of parameters as published: "5B" (Wan 2.2 TI2V model card), "19B" (LTX-2 model
# card), 12.2B (google/gemma-3-12b-it: 12,187,325,040). A14B: each expert's published bf16
# checkpoint is 28.6 GB, 14.3B parameters (wan2.2_t2v_{high,low}_noise_14B); the model card
# rounds that to "14B active" and calls the pair "27B total", which the two files contradict.
PUBLISHED_PARAMS = {
    "wan22-ti2v-5b": {"transformer": 5000.0},
    "wan22-t2v-a14b": {"transformer": 14300.0, "transformer_2": 14300.0},
    "ltx2": {"transformer": 19000.0, "text_encoder": 12187.3},
}
# Families whose published size covers several denoisers: A14B counts both experts.
PUBLISHED_DENOISERS = {"wan22-t2v-a14b": (("transformer", "transformer_2"), 28600.0)}


def _wan22_5b() -> Any:
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline
    from diffusers import WanTransformer3DModel as Transformer
    from transformers import UMT5Config, UMT5EncoderModel

    from bench.full_size import UMT5_XXL, WAN_SCHEDULER, _host
    from training.models.tiny_t5 import build_toy_t5_tokenizer

    return WanPipeline(
        tokenizer=build_toy_t5_tokenizer(max_length=512),
        text_encoder=UMT5EncoderModel(UMT5Config(**UMT5_XXL)),
        vae=AutoencoderKLWan.from_config(WAN22_VAE),
        scheduler=_host(UniPCMultistepScheduler, {**WAN_SCHEDULER, "flow_shift": 5.0}),
        transformer=Transformer.from_config(WAN22_5B_TRANSFORMER),
        expand_timesteps=True,
    )


def _wan22_a14b() -> Any:
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline
    from diffusers import WanTransformer3DModel as Transformer
    from transformers import UMT5Config, UMT5EncoderModel

    from bench.full_size import UMT5_XXL, WAN_SCHEDULER, WAN_VAE, _host
    from training.models.tiny_t5 import build_toy_t5_tokenizer

    return WanPipeline(
        tokenizer=build_toy_t5_tokenizer(max_length=512),
        text_encoder=UMT5EncoderModel(UMT5Config(**UMT5_XXL)),
        vae=AutoencoderKLWan.from_config(WAN_VAE),  # A14B keeps the Wan 2.1 VAE
        scheduler=_host(UniPCMultistepScheduler, WAN_SCHEDULER),
        transformer=Transformer.from_config(WAN22_14B_EXPERT),
        transformer_2=Transformer.from_config(WAN22_14B_EXPERT),
        boundary_ratio=0.875,
    )


def _ltx2() -> Any:
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2Pipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    from bench.full_size import _host
    from training.models.tiny_gemma import build_toy_gemma_tokenizer
    from training.models.tiny_ltx2 import SCHEDULER

    return LTX2Pipeline(
        scheduler=_host(FlowMatchEulerDiscreteScheduler, SCHEDULER),
        vae=AutoencoderKLLTX2Video.from_config(LTX2_VAE),
        audio_vae=AutoencoderKLLTX2Audio.from_config(LTX2_AUDIO_VAE),
        text_encoder=Gemma3ForConditionalGeneration(Gemma3Config(**GEMMA3_12B)),
        tokenizer=build_toy_gemma_tokenizer(max_length=1024),
        connectors=LTX2TextConnectors.from_config(LTX2_CONNECTORS),
        transformer=LTX2VideoTransformer3DModel.from_config(LTX2_TRANSFORMER),
        vocoder=LTX2Vocoder.from_config(LTX2_VOCODER),
    )


BUILDERS = {"wan22-ti2v-5b": _wan22_5b, "wan22-t2v-a14b": _wan22_a14b, "ltx2": _ltx2}
