"""FLUX.1-dev: rectified-flow transformer over packed 2x2 latent patches, CLIP + T5 prompts.

Training adapts diffusers ``examples/dreambooth/train_dreambooth_lora_flux.py`` (as of
diffusers 0.32-0.35; the installed library is 0.42): packing, image/text ids, the guidance
input, the target ``noise - latents`` and the LoRA target list. Two deliberate differences:
sigmas are logit-normal and shifted by the resolution-dependent e**mu the scheduler applies at
inference (the example samples its discrete timesteps uniformly by default), and the guidance
input is fixed at 1.0 while training (the example exposes it as ``--guidance_scale``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from training.errors import ModelLoadError
from training.models.base import FamilySpec, LatentBatch, LoadedModel, SampleRequest
from training.models.flow_family import FlowTransformerFamily
from training.models.flow_matching import (
    noisy_latents_and_target,
    resolution_shift,
    sample_sigmas,
    velocity_loss,
)
from training.models.flux_kohya import KOHYA_PREFIX, flux_kohya_module
from training.models.native_lora import NativeModule

if TYPE_CHECKING:
    import torch
    from PIL import Image

SPEC = FamilySpec.from_catalogue(
    "flux-dev",
    pipeline_class="FluxPipeline",
    prediction="flow_matching",
    flow_shift=None,  # resolution-dependent: e**mu from the scheduler's base/max shift
    default_guidance_scale=3.5,
)

# The diffusers FLUX LoRA example's default targets, plus ``proj_mlp``: with it the fused BFL
# ``linear1`` (q, k, v, mlp) of single blocks is fully covered, so the kohya export is an exact
# block-diagonal LoRA that diffusers splits back without zero-filled extra adapters.
LORA_TARGETS = [
    "attn.to_k",
    "attn.to_q",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_k_proj",
    "attn.add_q_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "ff.net.0.proj",
    "ff.net.2",
    "ff_context.net.0.proj",
    "ff_context.net.2",
    "proj_mlp",
]
TRAIN_GUIDANCE = 1.0
MAX_T5_TOKENS = 512  # FLUX.1-dev was trained with 512 T5 tokens


class FluxFamily(FlowTransformerFamily):
    """FLUX.1-dev LoRA training: FluxPipeline, FluxTransformer2DModel, 16-channel VAE."""

    spec = SPEC
    pipeline_class_name = "FluxPipeline"
    comfyui_prefix = KOHYA_PREFIX
    text_components = ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")

    def encode_prompts(self, model: LoadedModel, prompts: list[str]) -> dict[str, torch.Tensor]:
        """T5 (N, tokens, 4096) sequence and CLIP (N, 768) pooled embeddings."""
        import torch

        pipe = model.pipeline
        if pipe.text_encoder is None or pipe.text_encoder_2 is None:
            raise ModelLoadError("FLUX text encoders were not loaded (text_encoders=False)")
        tokens = min(MAX_T5_TOKENS, pipe.tokenizer_2.model_max_length)
        with torch.no_grad():
            embeds, pooled, _ = pipe.encode_prompt(
                prompt=prompts, prompt_2=None, device=model.device, max_sequence_length=tokens
            )
        return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}

    def encode_media(self, model: LoadedModel, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, C, H/8, W/8) latents, shifted then scaled (mode)."""
        import torch

        vae = model.pipeline.vae
        with torch.no_grad():
            latents = vae.encode(pixels.to(model.device, vae.dtype)).latent_dist.mode()
        return (latents - vae.config.shift_factor) * vae.config.scaling_factor

    def lora_target_modules(self) -> list[str]:
        """Attention and feed-forward linears of both block types (see LORA_TARGETS)."""
        return list(LORA_TARGETS)

    def training_loss(
        self, model: LoadedModel, batch: LatentBatch, generator: torch.Generator
    ) -> torch.Tensor:
        """Flow-matching MSE on packed latents with resolution-shifted logit-normal sigmas."""
        import torch
        from diffusers import FluxPipeline

        pipe, dtype = model.pipeline, model.dtype
        latents = batch.latents
        size, channels, height, width = latents.shape
        # One token per 2x2 latent patch; the shift grows with the token count like at inference.
        shift = resolution_shift((height // 2) * (width // 2), pipe.scheduler.config)
        sigmas = sample_sigmas(size, shift, generator, latents.device)
        noisy, target = noisy_latents_and_target(latents, sigmas, generator)
        packed = FluxPipeline._pack_latents(noisy, size, channels, height, width)
        prompt_embeds = batch.embeds["prompt_embeds"].to(dtype)
        guidance = None
        if pipe.transformer.config.guidance_embeds:
            guidance = torch.full((size,), TRAIN_GUIDANCE, device=latents.device)
        prediction = pipe.transformer(
            hidden_states=packed.to(dtype),
            timestep=sigmas.to(dtype),  # the transformer scales by 1000 itself
            guidance=guidance,
            pooled_projections=batch.embeds["pooled_prompt_embeds"].to(dtype),
            encoder_hidden_states=prompt_embeds,
            txt_ids=torch.zeros(prompt_embeds.shape[1], 3, device=latents.device, dtype=dtype),
            img_ids=self._image_ids(model, height, width, latents.device),
            return_dict=False,
        )[0]
        packed_target = FluxPipeline._pack_latents(target, size, channels, height, width)
        return velocity_loss(prediction, packed_target)

    def _image_ids(
        self, model: LoadedModel, height: int, width: int, device: torch.device
    ) -> torch.Tensor:
        """FLUX's packed-patch position ids for a latent size, built on device once per size."""
        from diffusers import FluxPipeline

        known = model.extras.setdefault("image_ids", {})
        key = (height, width)
        if key not in known:
            known[key] = FluxPipeline._prepare_latent_image_ids(
                1, height // 2, width // 2, device, model.dtype
            )
        return known[key]

    def sample(self, model: LoadedModel, request: SampleRequest) -> list[Image.Image]:
        """One image from cached embeddings; guidance goes to the guidance input (no CFG)."""
        guidance = request.guidance_scale
        if guidance is None:
            guidance = self.spec.default_guidance_scale
        embeds = {k: v.to(model.device, model.dtype) for k, v in request.embeds.items()}
        with self._inference(model):
            result = model.pipeline(
                prompt_embeds=embeds["prompt_embeds"],
                pooled_prompt_embeds=embeds["pooled_prompt_embeds"],
                num_inference_steps=request.steps,
                guidance_scale=guidance,
                width=request.width,
                height=request.height,
                generator=self._generator(model, request.seed),
                output_type="pil",
            )
        return [result.images[0]]

    def comfyui_module(self, module: str) -> NativeModule | None:
        """kohya sd-scripts FLUX layout (``lora_unet_double_blocks_0_img_attn_qkv``...)."""
        return flux_kohya_module(module)

    def diffusers_reads_comfyui(self, model: LoadedModel) -> bool:
        """diffusers' kohya FLUX converter hard-codes FLUX.1's block counts and widths.

        It splits single blocks' ``linear1`` at 3072/3072/3072/12288 and reads 19 double and
        38 single blocks, so any other shape is verified through the key map alone.
        """
        config = self.denoiser(model).config
        width = config.num_attention_heads * config.attention_head_dim
        blocks_fit = config.num_layers <= 19 and config.num_single_layers <= 38
        return blocks_fit and (config.num_single_layers == 0 or width == 3072)

    def make_tiny(self, out_dir: Path, *, single_blocks: int = 0) -> Path:
        """Tiny random FLUX pipeline: toy CLIP + T5, 4-channel VAE, 1 double + N single blocks.

        No single blocks by default (the smallest model the tests train); ``single_blocks=1``
        builds one with the fused ``linear1`` path, whose ComfyUI file the export check verifies
        through the key map only (``diffusers_reads_comfyui``).
        """
        import torch
        from diffusers import (
            FlowMatchEulerDiscreteScheduler,
            FluxPipeline,
            FluxTransformer2DModel,
        )
        from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

        from training.models.tiny_parts import (
            TINY_SEED,
            build_toy_clip_tokenizer,
            tiny_clip_text_kwargs,
            tiny_vae,
        )
        from training.models.tiny_t5 import build_toy_t5_tokenizer, tiny_t5_kwargs

        torch.manual_seed(TINY_SEED)
        clip_tokenizer, t5_tokenizer = build_toy_clip_tokenizer(), build_toy_t5_tokenizer()
        clip_config = CLIPTextConfig(**tiny_clip_text_kwargs(len(clip_tokenizer)))
        vae = tiny_vae(flux_layout=True)
        pipe = FluxPipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(
                shift=3.0,
                use_dynamic_shifting=True,
                base_shift=0.5,
                max_shift=1.15,
                base_image_seq_len=256,
                max_image_seq_len=4096,
            ),
            vae=vae,
            text_encoder=CLIPTextModel(clip_config),
            tokenizer=clip_tokenizer,
            text_encoder_2=T5EncoderModel(T5Config(**tiny_t5_kwargs(len(t5_tokenizer)))),
            tokenizer_2=t5_tokenizer,
            transformer=FluxTransformer2DModel(
                patch_size=1,
                in_channels=vae.config.latent_channels * 4,  # packed 2x2 patches
                num_layers=1,
                num_single_layers=single_blocks,
                attention_head_dim=8,
                num_attention_heads=2,
                joint_attention_dim=32,  # T5 d_model
                pooled_projection_dim=32,  # CLIP hidden size
                guidance_embeds=True,
                axes_dims_rope=(2, 2, 4),  # sums to attention_head_dim
            ),
        )
        pipe.save_pretrained(str(out_dir), safe_serialization=True)
        return out_dir


FAMILY = FluxFamily()
