"""Qwen-Image: a 20B MMDiT over packed 2x2 latent patches, Qwen2.5-VL prompts, Wan-style VAE.

Follows diffusers 0.42.1 ``pipelines/qwenimage/pipeline_qwenimage.py`` and
``models/transformers/transformer_qwenimage.py``:

* Prompts go through the pipeline's own ``encode_prompt``: the system-prompt template, the last
  hidden state of Qwen2.5-VL, the template's first 34 tokens dropped, a mask over the rest.
  They are cached zero-padded to 512 tokens (the pipeline's ``max_sequence_length``) and each
  batch is cut back to its longest prompt (``prompt_padding``).
* Latents: ``AutoencoderKLQwenImage`` encodes images as 1-frame clips (Wan 2.1's causal VAE);
  normalised with the VAE config's per-channel ``latents_mean``/``latents_std`` exactly as the
  pipeline un-normalises them before decoding, then packed into 2x2 patches (``_pack_latents``).
* Target and timesteps: rectified flow as in diffusers ``examples/dreambooth/
  train_dreambooth_lora_qwen_image.py`` (``(1 - s) x + s noise``, target ``noise - x``,
  the transformer takes ``s`` and scales it by 1000), with logit-normal sigmas shifted by the
  resolution-dependent e**mu the scheduler applies at inference (``calculate_shift`` over the
  packed sequence length, Qwen-Image's base/max shift 0.5/0.9 over 256..8192 tokens). That is
  musubi-tuner's ``--timestep_sampling qwen_shift`` ("the same method as during inference").
* LoRA targets: every attention projection of both streams and both streams' MLPs, as
  musubi-tuner's ``networks.lora_qwen_image`` and ai-toolkit train Qwen-Image LoRAs (the
  diffusers example's default is attention only).
* ComfyUI file: ComfyUI's Qwen-Image model keeps the diffusers module names
  (``comfy/ldm/qwen_image/model.py``) and its ``comfy/lora.py`` QwenImage branch maps
  ``diffusion_model.<module>``, ``transformer.<module>`` and bare ``<module>`` keys; the file
  uses the first, the original checkpoint's layout, with ``lora_down``/``lora_up``/``alpha``.
"""

from __future__ import annotations

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
from training.models.native_lora import NativeModule
from training.models.prompt_padding import pad_prompt_tokens, trim_to_longest, valid_tokens

if TYPE_CHECKING:
    import torch
    from PIL import Image

SPEC = FamilySpec.from_catalogue(
    "qwen-image",
    pipeline_class="QwenImagePipeline",
    prediction="flow_matching",
    flow_shift=None,  # resolution-dependent: e**mu from the scheduler's base/max shift
    default_guidance_scale=4.0,  # the pipeline's true_cfg_scale
)

LORA_TARGETS = [
    "attn.to_q",
    "attn.to_k",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_q_proj",
    "attn.add_k_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "img_mlp.net.0.proj",
    "img_mlp.net.2",
    "txt_mlp.net.0.proj",
    "txt_mlp.net.2",
]
MAX_PROMPT_TOKENS = 512  # QwenImagePipeline.__call__'s default max_sequence_length


class QwenImageFamily(FlowTransformerFamily):
    """Qwen-Image LoRA training: QwenImagePipeline, QwenImageTransformer2DModel."""

    spec = SPEC
    pipeline_class_name = "QwenImagePipeline"
    text_components = ("text_encoder", "tokenizer")

    def encode_prompts(self, model: LoadedModel, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Qwen2.5-VL states after the template, (N, 512, D) zero-padded, and their mask."""
        import torch

        pipe = model.pipeline
        if pipe.text_encoder is None:
            raise ModelLoadError("the Qwen-Image text encoder was not loaded (text_encoders=False)")
        with torch.no_grad():
            embeds, mask = pipe.encode_prompt(
                prompt=prompts, device=model.device, max_sequence_length=MAX_PROMPT_TOKENS
            )
        padded, padded_mask = pad_prompt_tokens(valid_tokens(embeds, mask), MAX_PROMPT_TOKENS)
        return {"prompt_embeds": padded, "prompt_embeds_mask": padded_mask}

    def encode_media(self, model: LoadedModel, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, 16, H/8, W/8), per-channel normalised (mode)."""
        import torch

        vae = model.pipeline.vae
        with torch.no_grad():  # the VAE is a video VAE: an image is a 1-frame clip
            clip = pixels.to(model.device, vae.dtype).unsqueeze(2)
            latents = vae.encode(clip).latent_dist.mode()[:, :, 0]
        shape = (1, -1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean, device=latents.device).view(shape)
        std = torch.tensor(vae.config.latents_std, device=latents.device).view(shape)
        return (latents - mean.to(latents.dtype)) / std.to(latents.dtype)

    def free_encoders(self, model: LoadedModel) -> None:
        """Drop the text encoder and the VAE encoder; an empty stand-in keeps decoding working.

        ``AutoencoderKLQwenImage.decode`` counts the encoder's convolutions on every call.
        """
        import torch

        super().free_encoders(model)
        vae = getattr(model.pipeline, "vae", None)
        if vae is not None and vae.encoder is None:
            vae.encoder = torch.nn.Identity()

    def lora_target_modules(self) -> list[str]:
        """Attention projections and MLPs of the image and text streams (see LORA_TARGETS)."""
        return list(LORA_TARGETS)

    def training_loss(
        self, model: LoadedModel, batch: LatentBatch, generator: torch.Generator
    ) -> torch.Tensor:
        """Flow-matching MSE on packed latents with resolution-shifted logit-normal sigmas."""
        from diffusers import QwenImagePipeline

        pipe, dtype = model.pipeline, model.dtype
        latents = batch.latents
        size, channels, height, width = latents.shape
        patches = (height // 2) * (width // 2)
        sigmas = sample_sigmas(
            size, resolution_shift(patches, pipe.scheduler.config), generator, latents.device
        )
        noisy, target = noisy_latents_and_target(latents, sigmas, generator)
        embeds, mask = trim_to_longest(
            batch.embeds["prompt_embeds"], batch.embeds["prompt_embeds_mask"]
        )
        prediction = pipe.transformer(
            hidden_states=QwenImagePipeline._pack_latents(noisy, size, channels, height, width).to(
                dtype
            ),
            timestep=sigmas.to(dtype),  # the transformer scales by 1000 itself
            encoder_hidden_states=embeds.to(dtype),
            encoder_hidden_states_mask=mask,
            img_shapes=[[(1, height // 2, width // 2)]] * size,
            return_dict=False,
        )[0]
        packed_target = QwenImagePipeline._pack_latents(target, size, channels, height, width)
        return velocity_loss(prediction, packed_target)

    def sample(self, model: LoadedModel, request: SampleRequest) -> list[Image.Image]:
        """One image; true CFG against the cached empty prompt (none given: guidance off)."""
        guidance = request.guidance_scale
        if guidance is None:
            guidance = self.spec.default_guidance_scale
        kwargs = self._conditioning(model, request.embeds, "")
        if request.negative_embeds is not None and guidance > 1:
            kwargs |= self._conditioning(model, request.negative_embeds, "negative_")
        else:
            guidance = 1.0
        with self._inference(model):
            result = model.pipeline(
                **kwargs,
                true_cfg_scale=guidance,
                num_inference_steps=request.steps,
                width=request.width,
                height=request.height,
                generator=self._generator(model, request.seed),
                output_type="pil",
            )
        return [result.images[0]]

    def _conditioning(
        self, model: LoadedModel, embeds: dict[str, torch.Tensor], prefix: str
    ) -> dict[str, torch.Tensor]:
        """Cached embeddings cut to their prompt's length, as pipeline keyword arguments."""
        mask = embeds["prompt_embeds_mask"]
        length = max(1, int(mask.sum(dim=1).max()))
        return {
            f"{prefix}prompt_embeds": embeds["prompt_embeds"][:, :length].to(
                model.device, model.dtype
            ),
            f"{prefix}prompt_embeds_mask": mask[:, :length].to(model.device),
        }

    def comfyui_module(self, module: str) -> NativeModule | None:
        """ComfyUI's layout: ``diffusion_model.transformer_blocks.N.attn.to_q.lora_down`` etc."""
        return _native_module(module)

    def make_tiny(self, out_dir: Path) -> Path:
        """Tiny random Qwen-Image: toy Qwen2.5-VL, 4-channel causal VAE (8x), 2 blocks."""
        import torch
        from diffusers import (
            FlowMatchEulerDiscreteScheduler,
            QwenImagePipeline,
            QwenImageTransformer2DModel,
        )

        from training.models.tiny_parts import TINY_SEED
        from training.models.tiny_qwen import build_toy_qwen_tokenizer, tiny_qwen25_vl

        torch.manual_seed(TINY_SEED)
        tokenizer = build_toy_qwen_tokenizer()
        vae = _tiny_vae()
        pipe = QwenImagePipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(**QWEN_IMAGE_SCHEDULER),
            vae=vae,
            text_encoder=tiny_qwen25_vl(len(tokenizer)),
            tokenizer=tokenizer,
            transformer=QwenImageTransformer2DModel(
                patch_size=2,
                in_channels=4 * 4,  # packed 2x2 patches of 4 latent channels
                out_channels=4,
                num_layers=2,
                attention_head_dim=8,
                num_attention_heads=2,
                joint_attention_dim=32,  # the toy Qwen2.5-VL's hidden size
                axes_dims_rope=(2, 2, 4),  # sums to attention_head_dim
            ),
        )
        pipe.save_pretrained(str(out_dir), safe_serialization=True)
        return out_dir


# Qwen/Qwen-Image scheduler/scheduler_config.json (the dynamic shift the pipeline applies).
QWEN_IMAGE_SCHEDULER = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 8192,
    "max_shift": 0.9,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "shift_terminal": 0.02,
    "time_shift_type": "exponential",
    "use_dynamic_shifting": True,
}


def _tiny_vae() -> Any:
    """A 4-channel AutoencoderKLQwenImage (8x in space), calibrated like a trained one.

    A random VAE has no meaningful scale: its per-channel latent statistics are measured on
    photo-like images and recorded as the real config records them (normalised latents come
    out roughly unit variance), and its output layer is scaled so decoded images span the
    images' range instead of sitting near grey (a LoRA's effect would not show in samples).
    """
    import torch
    from diffusers import AutoencoderKLQwenImage

    from training.models.tiny_parts import calibrate_channels, calibration_pixels

    vae = AutoencoderKLQwenImage(base_dim=8, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1)
    images = calibration_pixels().unsqueeze(2)  # 1-frame clips
    calibrate_channels(vae, images)
    with torch.no_grad():
        raw = vae.encode(images).latent_dist.mode()
        gain = images.std() / vae.decode(raw).sample.std()
        vae.decoder.conv_out.weight.mul_(gain)
        vae.decoder.conv_out.bias.mul_(gain)
    return vae


def _native_module(module: str) -> NativeModule | None:
    """The original checkpoint names Qwen-Image's blocks as diffusers does."""
    return NativeModule(module) if module.startswith("transformer_blocks.") else None


FAMILY = QwenImageFamily()
