"""The tiny random LTX-2 pipeline: every component of the real one, at toy width.

The VAE keeps LTX-2's layout (4x4 pixel patches, then spatial, temporal and two
spatio-temporal downsamplings: 32x in space, 8x in time), so frame counts and bucket sizes follow
the same rules as the real model; its per-channel latent statistics are measured on a
calibration clip and stored where the real checkpoint keeps them (``latents_mean`` /
``latents_std`` buffers). Connector registers tile the 64-token toy prompt length.
"""

from __future__ import annotations

from typing import Any

LATENT_CHANNELS = 8
PROMPT_TOKENS = 64  # toy max_sequence_length; the real pipeline pads to 1024
# The diffusers LTX-2 scheduler's settings (dynamic shift between 1024 and 4096 tokens).
SCHEDULER = {
    "base_image_seq_len": 1024,
    "base_shift": 0.95,
    "max_image_seq_len": 4096,
    "max_shift": 2.05,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "shift_terminal": 0.1,
    "time_shift_type": "exponential",
    "use_dynamic_shifting": True,
}


def tiny_ltx2_pipeline() -> Any:
    """A seeded LTX2Pipeline with toy Gemma 3, connectors, VAEs, vocoder and transformer."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, LTX2Pipeline
    from transformers import Gemma3ForConditionalGeneration

    from training.models.tiny_gemma import build_toy_gemma_tokenizer, tiny_gemma3_config
    from training.models.tiny_parts import TINY_SEED

    torch.manual_seed(TINY_SEED)
    tokenizer = build_toy_gemma_tokenizer(max_length=PROMPT_TOKENS)
    text_encoder = Gemma3ForConditionalGeneration(tiny_gemma3_config(len(tokenizer)))
    text = text_encoder.config.text_config
    audio_vae = _tiny_audio_vae()
    return LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER),
        vae=_tiny_video_vae(),
        audio_vae=audio_vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        connectors=_tiny_connectors(text.hidden_size, text.num_hidden_layers + 1),
        transformer=_tiny_transformer(text.hidden_size),
        vocoder=_tiny_vocoder(audio_vae.config),
    )


def _tiny_transformer(caption_channels: int) -> Any:
    from diffusers import LTX2VideoTransformer3DModel

    return LTX2VideoTransformer3DModel(
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,  # = heads x head_dim, as in LTX-2 (4096)
        audio_in_channels=4,  # audio latent channels (2) x latent mel bins (8 / 4)
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        caption_channels=caption_channels,
        rope_type="split",  # LTX-2.0's
        rope_double_precision=False,
    )


def _tiny_connectors(caption_channels: int, layers: int) -> Any:
    from diffusers.pipelines.ltx2 import LTX2TextConnectors

    return LTX2TextConnectors(
        caption_channels=caption_channels,
        text_proj_in_factor=layers,  # Gemma's hidden states of every layer, stacked
        video_connector_num_attention_heads=2,
        video_connector_attention_head_dim=caption_channels // 2,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=16,
        audio_connector_num_attention_heads=2,
        audio_connector_attention_head_dim=caption_channels // 2,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=16,
        connector_rope_base_seq_len=PROMPT_TOKENS,
        rope_type="split",
        rope_double_precision=False,
    )


def _tiny_video_vae() -> Any:
    import torch
    from diffusers import AutoencoderKLLTX2Video

    from training.models.tiny_parts import calibration_clip, latent_statistics

    vae = AutoencoderKLLTX2Video(
        latent_channels=LATENT_CHANNELS,
        block_out_channels=(4, 8, 16, 32),
        decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        decoder_causal=False,  # LTX-2.0's decoder is not causal
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    )
    mean, std = latent_statistics(vae, calibration_clip(17, 128))
    vae.latents_mean.copy_(torch.tensor(mean))
    vae.latents_std.copy_(torch.tensor(std))
    return vae


def _tiny_audio_vae() -> Any:
    from diffusers import AutoencoderKLLTX2Audio

    return AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=2,
        norm_type="pixel",
        causality_axis="height",
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=8,
    )


def _tiny_vocoder(audio_config: Any) -> Any:
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    return LTX2Vocoder(
        in_channels=audio_config.output_channels * audio_config.mel_bins,
        hidden_channels=8,
        out_channels=2,
        upsample_kernel_sizes=[4, 4],
        upsample_factors=[2, 2],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=16000,
    )
