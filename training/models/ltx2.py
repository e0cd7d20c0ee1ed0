"""LTX-2: an audio+video transformer; Attune trains its video branch on clips without sound.

Follows diffusers 0.42.1 ``pipelines/ltx2/pipeline_ltx2.py`` and ``connectors.py``: Gemma 3's
hidden states of every layer, stacked, go through the frozen ``LTX2TextConnectors`` into video
and audio prompt embeddings (cached once, as Lightricks' LTX-2 trainer caches them); the
``AutoencoderKLLTX2Video`` compresses space by 32 and time by 8 (8k+1 frames), latents are
normalised with the VAE's ``latents_mean``/``latents_std`` and packed one token per latent
voxel; the denoiser predicts the velocity ``noise - latents``. Sigmas follow the Lightricks
trainer's ``shifted_logit_normal`` sampler (ltx-trainer ``timestep_samplers.py``): a logit-normal
shifted by mu, linear in the token count from 0.95 at 1024 tokens to 2.05 at 4096, the same line
the pipeline's scheduler uses (``training.models.flow_matching.resolution_shift``).

The audio branch: like the Lightricks trainer's video-only mode (``with_audio: false``, the
audio modality disabled), every step runs with ``isolate_modalities=True``, so the
audio-to-video and video-to-audio attentions are off and the video prediction does not depend
on the audio stream at all; the audio branch gets a single silent placeholder token (the least
work it can do) and no loss, and LoRA goes only on the video branch's modules (video
self-attention, text cross-attention, feed-forward), so the audio branch stays the base
model's. Samples run the full pipeline (audio generated alongside, then dropped). First-frame
(image-to-video) conditioning is not trained.

Export: the ComfyUI file uses the original checkpoint's names, which for these modules are
diffusers' (``diffusion_model.transformer_blocks.N.attn1.to_q``; diffusers' own LTX-2
converter renames nothing inside the blocks), so newer ComfyUI loads it through its generic
``diffusion_model.`` path (the Oct 2025 ComfyUI snapshot predates LTX-2), with PEFT's
``lora_A``/``lora_B`` spelling, the one both ComfyUI (``comfy/weight_adapter/lora.py``) and
diffusers' LTX-2 converter read (ai-toolkit writes its LTX-2 LoRAs this way too). It carries
no ``.alpha`` tensors (diffusers' LTX-2 loader refuses keys without "lora"); alpha / rank is
folded into ``lora_B``, which ComfyUI and diffusers both then apply at scale 1.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.errors import ModelLoadError
from training.models.base import FamilySpec, LatentBatch, LoadedModel, SampleRequest
from training.models.flow_family import FlowTransformerFamily
from training.models.flow_matching import (
    noisy_latents_and_target,
    resolution_shift,
    sample_sigmas,
    velocity_loss,
)
from training.models.native_lora import PEFT_SPELLING, NativeModule

if TYPE_CHECKING:
    from collections.abc import Iterator

    import torch
    from PIL import Image

SPEC = FamilySpec.from_catalogue(
    "ltx2",
    pipeline_class="LTX2Pipeline",
    prediction="flow_matching",
    flow_shift=None,  # token-count dependent: e**mu from the scheduler's base/max shift
    default_guidance_scale=4.0,
)
# The video branch of every block; audio_attn*, audio_ff and the audio<->video attentions
# are left alone (see the module docstring).
LORA_TARGETS = [
    *(f"attn1.{p}" for p in ("to_q", "to_k", "to_v", "to_out.0")),
    *(f"attn2.{p}" for p in ("to_q", "to_k", "to_v", "to_out.0")),
    "ff.net.0.proj",
    "ff.net.2",
]
MAX_GEMMA_TOKENS = 1024  # the pipeline pads prompts to 1024 Gemma tokens


class LTX2Family(FlowTransformerFamily):
    """LTX-2 video LoRA training: LTX2Pipeline, LTX2VideoTransformer3DModel, Gemma 3 prompts."""

    spec = SPEC
    pipeline_class_name = "LTX2Pipeline"
    text_components = ("text_encoder", "tokenizer", "connectors")
    comfyui_spelling = PEFT_SPELLING
    comfyui_fold_alpha = True  # as ai-toolkit's LTX-2 files; ComfyUI then scales by 1

    def encode_prompts(self, model: LoadedModel, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Connector outputs: video (N, tokens, D), audio (N, tokens, D') embeds and their mask."""
        import torch

        pipe = model.pipeline
        if pipe.text_encoder is None or pipe.connectors is None:
            raise ModelLoadError("the LTX-2 text encoder was not loaded (text_encoders=False)")
        tokens = min(MAX_GEMMA_TOKENS, pipe.tokenizer.model_max_length)
        with torch.no_grad():
            embeds, mask, _, _ = pipe.encode_prompt(
                prompt=prompts,
                do_classifier_free_guidance=False,
                max_sequence_length=tokens,
                device=model.device,
            )
            video, audio, mask = pipe.connectors(
                embeds, mask, padding_side=pipe.tokenizer.padding_side
            )
        return {"prompt_embeds": video, "audio_prompt_embeds": audio, "prompt_attention_mask": mask}

    def encode_media(self, model: LoadedModel, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, F, H, W) or (B, 3, H, W) -> normalised (B, C, (F-1)/8+1, H/32, W/32)"""
        import torch
        from diffusers import LTX2Pipeline

        vae = model.pipeline.vae
        if pixels.ndim == 4:  # a batch of images is a batch of 1-frame clips
            pixels = pixels.unsqueeze(2)
        with torch.no_grad():
            latents = vae.encode(pixels.to(model.device, vae.dtype)).latent_dist.mode()
        return LTX2Pipeline._normalize_latents(
            latents, vae.latents_mean, vae.latents_std, vae.config.scaling_factor
        )

    def lora_target_modules(self) -> list[str]:
        """The video branch's attention and feed-forward linears (see LORA_TARGETS)."""
        return list(LORA_TARGETS)

    def free_encoders(self, model: LoadedModel) -> None:
        """Also drop the text connectors: their outputs are cached with the prompts."""
        super().free_encoders(model)
        model.pipeline.connectors = None

    def training_loss(
        self, model: LoadedModel, batch: LatentBatch, generator: torch.Generator
    ) -> torch.Tensor:
        """Velocity MSE on packed video tokens; the audio stream isolated (module docstring)."""
        import torch
        from diffusers import LTX2Pipeline

        pipe, dtype = model.pipeline, model.dtype
        transformer = pipe.transformer
        latents = batch.latents if batch.latents.ndim == 5 else batch.latents.unsqueeze(2)
        size, _, frames, height, width = latents.shape
        packed = LTX2Pipeline._pack_latents(latents, 1, 1)  # (B, tokens, C); LTX-2 patches 1x1x1
        shift = resolution_shift(packed.shape[1], pipe.scheduler.config)
        sigmas = sample_sigmas(size, shift, generator, latents.device)
        noisy, target = noisy_latents_and_target(packed, sigmas, generator)
        # fp32 timesteps on the 0..1000 scale the pipeline passes (bf16 would round them).
        timestep = sigmas * pipe.scheduler.config.get("num_train_timesteps", 1000)
        fps = float(self.spec.fps or 24)
        silent = torch.zeros(size, 1, transformer.config.audio_in_channels, device=latents.device)
        embeds = {k: v.to(latents.device) for k, v in batch.embeds.items()}
        prediction, _ = transformer(
            hidden_states=noisy.to(dtype),
            audio_hidden_states=silent.to(dtype),
            encoder_hidden_states=embeds["prompt_embeds"].to(dtype),
            audio_encoder_hidden_states=embeds["audio_prompt_embeds"].to(dtype),
            timestep=timestep,
            sigma=timestep,  # what the pipeline passes; LTX-2.3's prompt modulation reads it
            audio_timestep=torch.full_like(timestep, 1000.0),  # the placeholder is pure noise
            encoder_attention_mask=embeds["prompt_attention_mask"],
            audio_encoder_attention_mask=embeds["prompt_attention_mask"],
            num_frames=frames,
            height=height,
            width=width,
            fps=fps,
            audio_num_frames=1,
            video_coords=transformer.rope.prepare_video_coords(
                size, frames, height, width, latents.device, fps=fps
            ),
            isolate_modalities=True,
            use_cross_timestep=self._cross_timestep(model),
            return_dict=False,
        )
        return velocity_loss(prediction, target)

    def _cross_timestep(self, model: LoadedModel) -> bool:
        """LTX-2.3 and later condition cross-modal attention on the other stream's sigma."""
        return bool(model.pipeline.transformer.config.get("cross_attn_mod", False))

    def sample(self, model: LoadedModel, request: SampleRequest) -> list[Image.Image]:
        """Frames of one clip from cached connector outputs (audio is generated and dropped)."""
        guidance = request.guidance_scale
        if guidance is None:
            guidance = self.spec.default_guidance_scale
        kwargs = _prompt_kwargs(model, "", request.embeds)
        if request.negative_embeds is None:
            guidance = 1.0  # CFG would re-encode "" with the text encoder, gone by now
        else:
            kwargs.update(_prompt_kwargs(model, "negative_", request.negative_embeds))
        video_dim = request.embeds["prompt_embeds"].shape[-1]
        with self._inference(model), _cached_connectors(model, video_dim):
            result = model.pipeline(
                **kwargs,
                height=request.height,
                width=request.width,
                num_frames=request.num_frames,
                frame_rate=float(self.spec.fps or 24),
                num_inference_steps=request.steps,
                # Plain CFG on both streams: STG and modality guidance each cost a pass more.
                guidance_scale=guidance,
                audio_guidance_scale=guidance,
                stg_scale=0.0,
                audio_stg_scale=0.0,
                modality_scale=1.0,
                audio_modality_scale=1.0,
                guidance_rescale=0.0,
                audio_guidance_rescale=0.0,
                use_cross_timestep=self._cross_timestep(model),
                generator=self._generator(model, request.seed),
                output_type="pil",
            )
        return list(result.frames[0])

    def comfyui_module(self, module: str) -> NativeModule | None:
        """``diffusion_model.<module>.lora_A/.lora_B.weight``, alpha/rank folded into B."""
        return _native_module(module)

    def make_tiny(self, out_dir: Path) -> Path:
        """Tiny random LTX-2 pipeline: toy Gemma 3, 32x/8x VAE, 2 blocks, calibrated latents."""
        from training.models.tiny_ltx2 import tiny_ltx2_pipeline

        tiny_ltx2_pipeline().save_pretrained(str(out_dir), safe_serialization=True)
        return out_dir


def _native_module(module: str) -> NativeModule | None:
    """The original LTX-2 checkpoint names the blocks' modules as diffusers does."""
    return NativeModule(module) if module.startswith("transformer_blocks.") else None


def _prompt_kwargs(model: LoadedModel, prefix: str, embeds: dict[str, Any]) -> dict[str, Any]:
    """Pipeline arguments for one cached prompt: video and audio embeds side by side."""
    import torch

    packed = torch.cat([embeds["prompt_embeds"], embeds["audio_prompt_embeds"]], dim=-1)
    return {
        f"{prefix}prompt_embeds": packed.to(model.device, model.dtype),
        f"{prefix}prompt_attention_mask": embeds["prompt_attention_mask"].to(model.device),
    }


class _CachedConnectorOutputs:
    """Stands in for the pipeline's text connectors while sampling from cached outputs.

    The pipeline runs its prompt embeddings through ``connectors`` itself; ours already are
    the (frozen) connectors' outputs, video and audio side by side, so this splits them back.
    """

    def __init__(self, video_dim: int) -> None:
        self.video_dim = video_dim

    def __call__(self, embeds: Any, mask: Any, padding_side: str = "left") -> tuple[Any, Any, Any]:
        return embeds[..., : self.video_dim], embeds[..., self.video_dim :], mask


@contextmanager
def _cached_connectors(model: LoadedModel, video_dim: int) -> Iterator[None]:
    pipe = model.pipeline
    connectors = pipe.connectors
    pipe.connectors = _CachedConnectorOutputs(video_dim)
    try:
        yield
    finally:
        pipe.connectors = connectors


FAMILY = LTX2Family()
