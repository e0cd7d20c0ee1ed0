"""What FLUX.2 [dev] and FLUX.2 [klein] share: Flux2Transformer2DModel, AutoencoderKLFlux2, loss.

Follows the diffusers 0.42.1 pipelines (``pipelines/flux2/pipeline_flux2.py`` and
``pipeline_flux2_klein.py``) and ``examples/dreambooth/train_dreambooth_lora_flux2.py`` /
``train_dreambooth_lora_flux2_klein.py`` (diffusers main, 2026): latents are the VAE's
distribution mode, patchified 2x2 (32 -> 128 channels) and normalised by the VAE's batch-norm
running statistics; one token per latent position with 4D (t, h, w, l) ids; the target is
``noise - latents``. Timesteps follow musubi-tuner's ``flux2_shift`` (src/musubi_tuner/training/
trainer_base.py, 2026): logit-normal sigmas shifted by e**mu, mu linear in the token count
from (256, 0.5) to (4096, 1.15); the diffusers example samples uniformly instead.

ComfyUI file: the original (BFL) checkpoint's names under ``diffusion_model.``, e.g.
``diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight``. The ComfyUI snapshot read for
this (0.3.64, Oct 2025) predates FLUX.2 and has no FLUX.2 key map; it loads any
``diffusion_model.<native name>`` through its generic path (comfy/lora.py
``model_lora_keys_unet``), which is how newer ComfyUI loads FLUX.2 LoRAs from ai-toolkit too.
q, k, v are fused in the original double blocks: ``native_lora`` writes the block-diagonal LoRA
(the same update), which diffusers' ``_convert_non_diffusers_flux2_lora_to_diffusers`` splits
back. The file carries no alpha keys (that converter refuses them) and uses the lora_A/lora_B
spelling (``.lora_down`` would send it to diffusers' kohya converter), so alpha / rank is
folded into the up weights.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from training.errors import ModelLoadError
from training.models.base import LatentBatch, LoadedModel, SampleRequest
from training.models.flow_family import FlowTransformerFamily
from training.models.flow_matching import (
    noisy_latents_and_target,
    resolution_shift,
    sample_sigmas,
    velocity_loss,
)
from training.models.native_lora import PEFT_SPELLING, NativeModule

if TYPE_CHECKING:
    import torch
    from PIL import Image

MAX_TEXT_TOKENS = 512  # both pipelines' max_sequence_length
MAX_SINGLE_BLOCKS = 48  # FLUX.2-dev has 48 single blocks, klein 9B 24, klein 4B 20
TRAIN_GUIDANCE = 1.0  # the guidance input while training dev (diffusers README and SimpleTuner)

# Every linear of both block types, as musubi-tuner's networks.lora_flux_2 and ai-toolkit train.
# A single block's attention output is a plain Linear named ``attn.to_out`` while a double
# block's is a ModuleList, so single blocks are named by index (as the diffusers example does).
LORA_TARGETS = [
    *("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0"),
    *("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj", "attn.to_add_out"),
    *("ff.linear_in", "ff.linear_out", "ff_context.linear_in", "ff_context.linear_out"),
    "attn.to_qkv_mlp_proj",
    *(f"single_transformer_blocks.{i}.attn.to_out" for i in range(MAX_SINGLE_BLOCKS)),
]

# diffusers module inside a block -> (original module, slot in its fused q/k/v, parts fused).
_DOUBLE = {
    "attn.to_q": ("img_attn.qkv", 0, 3),
    "attn.to_k": ("img_attn.qkv", 1, 3),
    "attn.to_v": ("img_attn.qkv", 2, 3),
    "attn.add_q_proj": ("txt_attn.qkv", 0, 3),
    "attn.add_k_proj": ("txt_attn.qkv", 1, 3),
    "attn.add_v_proj": ("txt_attn.qkv", 2, 3),
    "attn.to_out.0": ("img_attn.proj", 0, 1),
    "attn.to_add_out": ("txt_attn.proj", 0, 1),
    "ff.linear_in": ("img_mlp.0", 0, 1),
    "ff.linear_out": ("img_mlp.2", 0, 1),
    "ff_context.linear_in": ("txt_mlp.0", 0, 1),
    "ff_context.linear_out": ("txt_mlp.2", 0, 1),
}
_SINGLE = {"attn.to_qkv_mlp_proj": ("linear1", 0, 1), "attn.to_out": ("linear2", 0, 1)}
_BLOCK = re.compile(r"^(transformer_blocks|single_transformer_blocks)\.(\d+)\.(.+)$")


def native_module(module: str) -> NativeModule | None:
    """The original FLUX.2 module (and fused slot) of a diffusers module path, or None."""
    match = _BLOCK.match(module)
    if match is None:
        return None
    double = match[1] == "transformer_blocks"
    target = (_DOUBLE if double else _SINGLE).get(match[3])
    if target is None:
        return None
    kind = "double_blocks" if double else "single_blocks"
    return NativeModule(f"{kind}.{match[2]}.{target[0]}", slot=target[1], parts=target[2])


class Flux2Family(FlowTransformerFamily):
    """FLUX.2 training shared by dev and klein; subclasses say how prompts are encoded."""

    text_components = ("text_encoder", "tokenizer")
    comfyui_spelling = PEFT_SPELLING
    comfyui_fold_alpha = True  # diffusers' FLUX.2 converter refuses .alpha keys in this layout

    def encode_prompts(self, model: LoadedModel, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Stacked hidden states of three text-encoder layers, (N, tokens, 3 x hidden)."""
        import torch

        pipe = model.pipeline
        if pipe.text_encoder is None:
            raise ModelLoadError(f"the {self.spec.name} text encoder was not loaded")
        tokenizer = getattr(pipe.tokenizer, "tokenizer", pipe.tokenizer)  # a processor wraps one
        tokens = min(MAX_TEXT_TOKENS, tokenizer.model_max_length)
        with torch.no_grad():
            embeds, _ = pipe.encode_prompt(
                prompt=prompts, device=model.device, max_sequence_length=tokens
            )
        return {"prompt_embeds": embeds}

    def encode_media(self, model: LoadedModel, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, 4C, H/16, W/16): patchified, batch-norm normalised."""
        import torch

        vae = model.pipeline.vae
        with torch.no_grad():
            latents = vae.encode(pixels.to(model.device, vae.dtype)).latent_dist.mode()
        patches = type(model.pipeline)._patchify_latents(latents)
        mean, std = self._latent_stats(model, patches)
        return (patches - mean) / std

    def _latent_stats(
        self, model: LoadedModel, like: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The VAE batch norm's running mean and std, shaped to broadcast over (B, 4C, h, w)."""
        import torch

        vae = model.pipeline.vae
        mean = vae.bn.running_mean.view(1, -1, 1, 1).to(like.device, like.dtype)
        var = vae.bn.running_var.view(1, -1, 1, 1).to(like.device, like.dtype)
        return mean, torch.sqrt(var + vae.config.batch_norm_eps)

    def lora_target_modules(self) -> list[str]:
        """Attention, feed-forward and fused single-block linears (see LORA_TARGETS)."""
        return list(LORA_TARGETS)

    def training_loss(
        self, model: LoadedModel, batch: LatentBatch, generator: torch.Generator
    ) -> torch.Tensor:
        """Flow-matching MSE on the token sequence, sigmas shifted for the token count."""
        import torch

        pipe, dtype = model.pipeline, model.dtype
        latents = batch.latents
        size, _, height, width = latents.shape
        shift = resolution_shift(height * width, pipe.scheduler.config)  # one token per position
        sigmas = sample_sigmas(size, shift, generator, latents.device)
        noisy, target = noisy_latents_and_target(latents, sigmas, generator)
        prompt_embeds = batch.embeds["prompt_embeds"].to(dtype)
        guidance = None
        if pipe.transformer.config.guidance_embeds:
            guidance = torch.full((size,), TRAIN_GUIDANCE, device=latents.device)
        prediction = pipe.transformer(
            hidden_states=type(pipe)._pack_latents(noisy).to(dtype),
            timestep=sigmas.to(dtype),  # the transformer scales by 1000 itself
            guidance=guidance,
            encoder_hidden_states=prompt_embeds,
            txt_ids=type(pipe)._prepare_text_ids(prompt_embeds[:1]).to(latents.device),
            img_ids=self._image_ids(model, latents),
            return_dict=False,
        )[0]
        return velocity_loss(prediction, type(pipe)._pack_latents(target))

    def _image_ids(self, model: LoadedModel, latents: torch.Tensor) -> torch.Tensor:
        """(1, h*w, 4) position ids for a latent size, built on the device once per size."""
        known = model.extras.setdefault("image_ids", {})
        key = tuple(latents.shape[2:])
        if key not in known:
            ids = type(model.pipeline)._prepare_latent_ids(latents[:1])
            known[key] = ids.to(latents.device)
        return known[key]

    def _pipeline_kwargs(self, model: LoadedModel, request: SampleRequest) -> dict[str, object]:
        """Conditioning arguments for the pipeline call (prompt embeds, guidance, negatives)."""
        raise NotImplementedError

    def sample(self, model: LoadedModel, request: SampleRequest) -> list[Image.Image]:
        """One image from cached embeddings with the family's guidance."""
        with self._inference(model):
            result = model.pipeline(
                **self._pipeline_kwargs(model, request),
                num_inference_steps=request.steps,
                width=request.width,
                height=request.height,
                generator=self._generator(model, request.seed),
                output_type="pil",
            )
        return [result.images[0]]

    def comfyui_module(self, module: str) -> NativeModule | None:
        """``diffusion_model.`` + original FLUX.2 names, lora_A/lora_B, alpha folded in."""
        return native_module(module)


def tiny_flux2_vae() -> object:
    """A random AutoencoderKLFlux2 (8x down, 4 channels) whose batch norm is calibrated.

    The running statistics of the patchified latents are measured on the calibration images,
    so the normalised latents of the tiny model have roughly unit variance per channel, as the
    real VAE's statistics give.
    """
    import torch
    from diffusers import AutoencoderKLFlux2, Flux2Pipeline

    from training.models.tiny_parts import calibration_pixels, latent_statistics, tiny_vae_kwargs

    vae = AutoencoderKLFlux2(**tiny_vae_kwargs(), use_quant_conv=False, use_post_quant_conv=False)
    view = Flux2Pipeline._patchify_latents
    mean, std = latent_statistics(vae, calibration_pixels(), view=view)
    vae.bn.running_mean.copy_(torch.tensor(mean))
    vae.bn.running_var.copy_(torch.tensor(std).square())
    return vae


def tiny_flux2_transformer(text_width: int, guidance_embeds: bool) -> object:
    """A random Flux2Transformer2DModel: 1 double + 1 single block, 2 heads of 16, 16-aligned."""
    from diffusers import Flux2Transformer2DModel

    return Flux2Transformer2DModel(
        patch_size=1,
        in_channels=16,  # the tiny VAE's 4 channels x 2x2 patches
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=3 * text_width,  # three stacked text-encoder layers
        timestep_guidance_channels=32,
        axes_dims_rope=(4, 4, 4, 4),  # (t, h, w, l), sums to attention_head_dim
        guidance_embeds=guidance_embeds,
    )


def flux2_scheduler() -> object:
    """FLUX.2's own scheduler settings (dynamic, resolution-dependent shift), tiny or not."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
        time_shift_type="exponential",
    )
