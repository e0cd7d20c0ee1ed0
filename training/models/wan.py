"""Wan 2.1 text-to-video 1.3B: 3D rectified-flow transformer over causal-VAE video latents.

The VAE compresses time by 4 (first frame kept: 4k+1 frames -> k+1 latent frames) and space by
8; the transformer patches 1x2x2. Images train as 1-frame clips. Noising and the target follow
the rectified-flow recipe of diffusers v0.32 ``examples/dreambooth/train_dreambooth_lora_flux.py``
with Wan's fixed ``flow_shift`` (scheduler config) applied to logit-normal sigmas, as the
scheduler shifts its sigmas at inference.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.errors import ModelLoadError
from training.models.base import FamilySpec, LatentBatch, LoadedModel, SampleRequest
from training.models.flow_family import FlowTransformerFamily
from training.models.flow_matching import noisy_latents_and_target, sample_sigmas, velocity_loss
from training.models.native_lora import NativeModule

if TYPE_CHECKING:
    import torch
    from PIL import Image

SPEC = FamilySpec.from_catalogue(
    "wan21-t2v-1.3b",
    pipeline_class="WanPipeline",
    prediction="flow_matching",
    flow_shift=3.0,  # the 480p scheduler's flow_shift; the loaded config wins when it has one
    default_guidance_scale=5.0,
)

# Every linear of each transformer block, as musubi-tuner trains Wan LoRAs; the FFN matters
# for motion and style, attention alone under-fits video.
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2"]
MAX_T5_TOKENS = 512  # Wan was trained with 512 umT5 tokens (zero-padded)

# diffusers module inside blocks.N -> module name in the original Wan checkpoint (ComfyUI).
_ORIGINAL_NAMES = {
    "attn1.to_q": "self_attn.q",
    "attn1.to_k": "self_attn.k",
    "attn1.to_v": "self_attn.v",
    "attn1.to_out.0": "self_attn.o",
    "attn2.to_q": "cross_attn.q",
    "attn2.to_k": "cross_attn.k",
    "attn2.to_v": "cross_attn.v",
    "attn2.to_out.0": "cross_attn.o",
    "ffn.net.0.proj": "ffn.0",
    "ffn.net.2": "ffn.2",
}
_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.(.+)$")


class WanFamily(FlowTransformerFamily):
    """Wan 2.1 T2V 1.3B LoRA training: WanPipeline, WanTransformer3DModel, AutoencoderKLWan."""

    spec = SPEC
    pipeline_class_name = "WanPipeline"
    text_components = ("text_encoder", "tokenizer")

    def encode_prompts(self, model: LoadedModel, prompts: list[str]) -> dict[str, torch.Tensor]:
        """umT5 states (N, tokens, 4096), zero past each prompt's end as the pipeline pads."""
        import torch

        pipe = model.pipeline
        if pipe.text_encoder is None:
            raise ModelLoadError("the Wan text encoder was not loaded (text_encoders=False)")
        tokens = min(MAX_T5_TOKENS, pipe.tokenizer.model_max_length)
        with torch.no_grad():
            embeds, _ = pipe.encode_prompt(
                prompt=prompts,
                do_classifier_free_guidance=False,
                max_sequence_length=tokens,
                device=model.device,
            )
        return {"prompt_embeds": embeds}

    def encode_media(self, model: LoadedModel, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, F, H, W) or (B, 3, H, W) in [-1, 1] -> normalised (B, C, (F-1)/4+1, H/8, W/8)."""
        import torch

        vae = model.pipeline.vae
        if pixels.ndim == 4:  # a batch of images is a batch of 1-frame clips
            pixels = pixels.unsqueeze(2)
        with torch.no_grad():
            latents = vae.encode(pixels.to(model.device, vae.dtype)).latent_dist.mode()
        shape = (1, -1, 1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean, device=latents.device).view(shape)
        std = torch.tensor(vae.config.latents_std, device=latents.device).view(shape)
        return (latents - mean.to(latents.dtype)) / std.to(latents.dtype)

    def lora_target_modules(self) -> list[str]:
        """Self/cross-attention q, k, v, out and the FFN of every block (see LORA_TARGETS)."""
        return list(LORA_TARGETS)

    def training_loss(
        self, model: LoadedModel, batch: LatentBatch, generator: torch.Generator
    ) -> torch.Tensor:
        """Flow-matching MSE on (B, C, F, H, W) latents with flow-shifted logit-normal sigmas."""
        shift = self.flow_shift(model.pipeline.scheduler.config)
        sigmas = sample_sigmas(batch.latents.shape[0], shift, generator, batch.latents.device)
        return self._flow_loss(model, model.pipeline.transformer, batch, sigmas, generator)

    def _flow_loss(
        self,
        model: LoadedModel,
        transformer: torch.nn.Module,
        batch: LatentBatch,
        sigmas: torch.Tensor,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Noise the batch to ``sigmas``, predict with ``transformer``, velocity MSE."""
        latents = batch.latents
        if latents.ndim == 4:  # images train as 1-frame clips
            latents = latents.unsqueeze(2)
        noisy, target = noisy_latents_and_target(latents, sigmas, generator)
        steps = model.pipeline.scheduler.config.get("num_train_timesteps", 1000)
        prediction = transformer(
            hidden_states=noisy.to(model.dtype),
            # fp32 on Wan's 0..1000 scale: bf16 would round it to steps of 4 near 1000.
            timestep=sigmas * steps,
            encoder_hidden_states=batch.embeds["prompt_embeds"].to(model.dtype),
            return_dict=False,
        )[0]
        return velocity_loss(prediction, target)

    def flow_shift(self, scheduler_config: Any) -> float:
        """The scheduler's shift (UniPC ``flow_shift``, FlowMatch ``shift``), else the spec's."""
        for key in ("flow_shift", "shift"):
            value = scheduler_config.get(key)
            if value:
                return float(value)
        return float(self.spec.flow_shift or 1.0)

    def sample(self, model: LoadedModel, request: SampleRequest) -> list[Image.Image]:
        """Frames of one clip; CFG against the cached negative embeds (none: guidance off)."""
        guidance = request.guidance_scale
        if guidance is None:
            guidance = self.spec.default_guidance_scale
        kwargs = {"prompt_embeds": request.embeds["prompt_embeds"].to(model.device, model.dtype)}
        if request.negative_embeds is None:
            guidance = 1.0  # CFG would re-encode "" with the text encoder, gone by now
        else:
            negative = request.negative_embeds["prompt_embeds"]
            kwargs["negative_prompt_embeds"] = negative.to(model.device, model.dtype)
        with self._inference(model):
            result = model.pipeline(
                **kwargs,
                height=request.height,
                width=request.width,
                num_frames=request.num_frames,
                num_inference_steps=request.steps,
                guidance_scale=guidance,
                generator=self._generator(model, request.seed),
                output_type="pil",
            )
        return list(result.frames[0])

    def comfyui_module(self, module: str) -> NativeModule | None:
        """ComfyUI's Wan layout: ``diffusion_model.blocks.N.self_attn.q.lora_down.weight`` etc."""
        match = _BLOCK_RE.match(module)
        original = _ORIGINAL_NAMES.get(match[2]) if match else None
        return NativeModule(f"blocks.{match[1]}.{original}") if match and original else None

    def make_tiny(self, out_dir: Path) -> Path:
        """Tiny random Wan pipeline: toy umT5, 4-channel causal VAE (4x/8x), 2 blocks."""
        return save_tiny_wan(out_dir, tiny_wan21_vae, flow_shift=3.0)


def tiny_wan21_vae() -> Any:
    """The Wan 2.1 VAE's layout at toy width (4 channels, 8x in space, 4x in time), calibrated."""
    from diffusers import AutoencoderKLWan

    from training.models.tiny_parts import calibrate_channels, calibration_clip

    vae = AutoencoderKLWan(
        base_dim=8,
        z_dim=4,
        dim_mult=[1, 1, 1, 1],  # three downsamplings: 8x in space
        num_res_blocks=1,
        temperal_downsample=[False, True, True],  # two of them in time: 4x
        latents_mean=[0.0] * 4,  # measured below
        latents_std=[1.0] * 4,
    )
    return calibrate_channels(vae, calibration_clip(9, 128))


def save_tiny_wan(
    out_dir: Path,
    make_vae: Callable[[], Any],
    *,
    flow_shift: float,
    experts: int = 1,
    **options: Any,
) -> Path:
    """Save a seeded tiny WanPipeline (toy umT5, ``make_vae()``, 2-block transformers) to out_dir.

    ``experts=2`` adds ``transformer_2`` (Wan 2.2 A14B); ``options`` go to WanPipeline
    (``boundary_ratio``, ``expand_timesteps``).
    """
    import torch
    from diffusers import UniPCMultistepScheduler, WanPipeline
    from transformers import UMT5Config, UMT5EncoderModel

    from training.models.tiny_parts import TINY_SEED
    from training.models.tiny_t5 import build_toy_t5_tokenizer, tiny_t5_kwargs

    torch.manual_seed(TINY_SEED)
    tokenizer = build_toy_t5_tokenizer()
    text_encoder = UMT5EncoderModel(UMT5Config(**tiny_t5_kwargs(len(tokenizer))))
    vae = make_vae()
    transformers = [_tiny_transformer(vae.config.z_dim) for _ in range(experts)]
    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=flow_shift
        ),
        transformer=transformers[0],
        transformer_2=transformers[1] if experts > 1 else None,
        **options,
    )
    pipe.save_pretrained(str(out_dir), safe_serialization=True)
    return out_dir


def _tiny_transformer(channels: int) -> Any:
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=channels,
        out_channels=channels,
        text_dim=32,  # umT5 d_model
        freq_dim=32,
        ffn_dim=32,
        num_layers=2,
        rope_max_seq_len=32,
    )


FAMILY = WanFamily()
