"""sdxl: Stable Diffusion XL base (two CLIP encoders, size/crop micro-conditioning).

Time-id conditioning follows diffusers ``examples/dreambooth/train_dreambooth_lora_sdxl.py``
(diffusers 0.42): original size + crop top-left + target size per item.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.models.base import FamilySpec, LatentBatch, LoadedModel, SampleRequest
from training.models.sd import StableDiffusionFamily

if TYPE_CHECKING:
    import torch

SPEC = FamilySpec.from_catalogue(
    "sdxl",
    pipeline_class="StableDiffusionXLPipeline",
    prediction="scheduler",
    default_guidance_scale=5.0,
)


class StableDiffusionXLFamily(StableDiffusionFamily):
    """SDXL: concatenated CLIP-L/bigG hidden states, pooled text embeds and add_time_ids."""

    pipeline_class_name = "StableDiffusionXLPipeline"

    text_components = ("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")

    def encode_prompts(self, model: LoadedModel, prompts: list[str]) -> dict[str, torch.Tensor]:
        """prompt_embeds (N, 77, 2048) and pooled_prompt_embeds (N, 1280) at full size."""
        import torch

        with torch.no_grad():
            embeds, _, pooled, _ = model.pipeline.encode_prompt(
                prompts, device=model.device, do_classifier_free_guidance=False
            )
        return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}

    def _added_conditions(self, model: LoadedModel, batch: LatentBatch) -> dict[str, Any]:
        """text_embeds = pooled, time_ids = (orig_h, orig_w, top, left, target_h, target_w).

        Each distinct row is copied to the device once: a fresh host-to-device copy every step
        would make the host wait for the GPU.
        """
        import torch

        scale = model.pipeline.vae_scale_factor
        target = (batch.latents.shape[-2] * scale, batch.latents.shape[-1] * scale)
        known = model.extras.setdefault("time_ids", {})
        rows = []
        for original, crop in zip(batch.original_sizes, batch.crop_top_lefts, strict=True):
            key = (*original, *crop, *target)
            if key not in known:
                known[key] = torch.tensor([key], device=batch.latents.device, dtype=model.dtype)
            rows.append(known[key])
        time_ids = rows[0] if len(rows) == 1 else torch.cat(rows)
        pooled = batch.embeds["pooled_prompt_embeds"].to(model.dtype)
        return {"text_embeds": pooled, "time_ids": time_ids}

    def _sample_kwargs(self, model: LoadedModel, request: SampleRequest) -> dict[str, Any]:
        # With force_zeros_for_empty_prompt (SDXL base) the pipeline builds zero negatives itself.
        kwargs = {
            "prompt_embeds": request.embeds["prompt_embeds"],
            "pooled_prompt_embeds": request.embeds["pooled_prompt_embeds"],
        }
        if request.negative_embeds is not None and not model.pipeline.config.get(
            "force_zeros_for_empty_prompt", False
        ):
            kwargs["negative_prompt_embeds"] = request.negative_embeds["prompt_embeds"]
            kwargs["negative_pooled_prompt_embeds"] = request.negative_embeds[
                "pooled_prompt_embeds"
            ]
        return kwargs

    def make_tiny(self, out_dir: Path) -> Path:
        """Tiny random SDXL: CLIPTextModel + CLIPTextModelWithProjection, text_time UNet."""
        import torch
        from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

        from training.models.sd import _tiny_unet
        from training.models.tiny_parts import TINY_SEED, tiny_clip, tiny_vae

        torch.manual_seed(TINY_SEED)
        tokenizer, text_encoder = tiny_clip()
        tokenizer_2, text_encoder_2 = tiny_clip(projection_dim=32)
        time_embed_dim = 8
        pipe = StableDiffusionXLPipeline(
            vae=tiny_vae(),
            text_encoder=text_encoder,
            text_encoder_2=text_encoder_2,
            tokenizer=tokenizer,
            tokenizer_2=tokenizer_2,
            unet=_tiny_unet(
                cross_attention_dim=64,  # 32 (encoder 1) + 32 (encoder 2), concatenated
                addition_embed_type="text_time",
                addition_time_embed_dim=time_embed_dim,
                projection_class_embeddings_input_dim=6 * time_embed_dim + 32,
                use_linear_projection=True,
            ),
            scheduler=EulerDiscreteScheduler(
                beta_start=0.00085,
                beta_end=0.012,
                beta_schedule="scaled_linear",
                timestep_spacing="leading",
                steps_offset=1,
            ),
            force_zeros_for_empty_prompt=True,
            add_watermarker=False,
        )
        pipe.save_pretrained(str(out_dir), safe_serialization=True)
        return out_dir


FAMILY = StableDiffusionXLFamily(SPEC)
