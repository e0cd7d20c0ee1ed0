"""Stable Diffusion 1.x-shaped families (``sd15`` and ``tiny-sd`` share this implementation).

Loss and saving follow diffusers ``examples/dreambooth/train_dreambooth_lora.py`` and
``train_dreambooth_lora_sdxl.py`` (diffusers 0.42), rewritten around cached latents/embeddings.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.errors import ModelLoadError
from training.models.base import (
    Family,
    FamilySpec,
    LatentBatch,
    LoadedModel,
    SampleRequest,
    load_frozen_pipeline,
)
from training.models.native_lora import NativeModule

if TYPE_CHECKING:
    import torch
    from PIL import Image

BUILTIN_PREFIX = "builtin:"  # "builtin:<family>" = the family's tiny model, built on first use
ATTENTION_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


class StableDiffusionFamily(Family):
    """SD 1.x: one CLIP text encoder, AutoencoderKL, UNet2DConditionModel, DDPM training."""

    pipeline_class_name = "StableDiffusionPipeline"
    text_components: tuple[str, ...] = ("text_encoder", "tokenizer")  # skipped for LoRA checks
    denoiser_components = ("unet",)
    comfyui_prefix = "lora_unet_"  # kohya's SD names, which ComfyUI and A1111 read

    def __init__(self, spec: FamilySpec) -> None:
        self.spec = spec

    def _pipeline_class(self) -> type:
        import diffusers

        return getattr(diffusers, self.pipeline_class_name)

    def load(
        self,
        source: str,
        *,
        dtype: torch.dtype,
        device: torch.device,
        text_encoders: bool = True,
        quantize: str = "none",
    ) -> LoadedModel:
        """Load with the pipeline class's from_pretrained; frozen, eval, on device."""
        return load_frozen_pipeline(
            self._pipeline_class(),
            resolve_source(self, source),
            source=source,
            family=self.spec.name,
            dtype=dtype,
            device=device,
            omit=() if text_encoders else self.text_components,
            quantize=quantize,
            denoisers=self.denoiser_components,
        )

    def encode_prompts(self, model: LoadedModel, prompts: list[str]) -> dict[str, torch.Tensor]:
        """(N, 77, hidden) CLIP last hidden states via the pipeline's own encode_prompt."""
        import torch

        with torch.no_grad():
            embeds, _ = model.pipeline.encode_prompt(
                prompts, model.device, 1, do_classifier_free_guidance=False
            )
        return {"prompt_embeds": embeds}

    def encode_media(self, model: LoadedModel, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, 4, H/8, W/8) scaled latents (distribution mode)."""
        import torch

        vae = model.pipeline.vae
        with torch.no_grad():
            dist = vae.encode(pixels.to(model.device, vae.dtype)).latent_dist
        return dist.mode() * vae.config.scaling_factor

    def denoiser(self, model: LoadedModel) -> torch.nn.Module:
        """The UNet."""
        return model.pipeline.unet

    def lora_target_modules(self) -> list[str]:
        """Attention projections, as in the diffusers DreamBooth LoRA examples."""
        return list(ATTENTION_TARGETS)

    def _noise_scheduler(self, model: LoadedModel) -> Any:
        scheduler = model.extras.get("noise_scheduler")
        if scheduler is None:
            from diffusers import DDPMScheduler

            scheduler = DDPMScheduler.from_config(model.pipeline.scheduler.config)
            model.extras["noise_scheduler"] = scheduler
        return scheduler

    def _noise_tables(
        self, model: LoadedModel, latents: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """sqrt(alphas_cumprod) and sqrt(1 - alphas_cumprod) per timestep, on device, built once.

        The same values DDPMScheduler.add_noise/get_velocity compute each call, without their
        per-step moves and casts.
        """
        key = ("noise_tables", latents.device, latents.dtype)
        tables = model.extras.get(key)
        if tables is None:
            cumprod = self._noise_scheduler(model).alphas_cumprod
            cumprod = cumprod.to(device=latents.device, dtype=latents.dtype)
            tables = model.extras[key] = (cumprod**0.5, (1 - cumprod) ** 0.5)
        return tables

    def _added_conditions(self, model: LoadedModel, batch: LatentBatch) -> dict[str, Any]:
        """Extra UNet inputs; SD 1.x has none."""
        return {}

    def training_loss(
        self, model: LoadedModel, batch: LatentBatch, generator: torch.Generator
    ) -> torch.Tensor:
        """DDPM loss: uniform timesteps, epsilon or v-prediction target per scheduler config."""
        import torch
        import torch.nn.functional as F

        scheduler = self._noise_scheduler(model)
        latents = batch.latents
        noise = torch.randn(
            latents.shape, generator=generator, device=latents.device, dtype=latents.dtype
        )
        steps = scheduler.config.num_train_timesteps
        timesteps = torch.randint(
            0, steps, (latents.shape[0],), generator=generator, device=latents.device
        )
        signal, sigma = self._noise_tables(model, latents)
        shape = (-1,) + (1,) * (latents.ndim - 1)
        signal, sigma = signal[timesteps].view(shape), sigma[timesteps].view(shape)
        noisy = signal * latents + sigma * noise  # DDPMScheduler.add_noise
        if scheduler.config.prediction_type == "v_prediction":
            target = signal * noise - sigma * latents  # DDPMScheduler.get_velocity
        else:
            target = noise
        prediction = model.pipeline.unet(
            noisy.to(model.dtype),
            timesteps,
            encoder_hidden_states=batch.embeds["prompt_embeds"].to(model.dtype),
            added_cond_kwargs=self._added_conditions(model, batch) or None,
            return_dict=False,
        )[0]
        return F.mse_loss(prediction.float(), target.float(), reduction="mean")

    def _sample_kwargs(self, model: LoadedModel, request: SampleRequest) -> dict[str, Any]:
        kwargs = {"prompt_embeds": request.embeds["prompt_embeds"]}
        if request.negative_embeds is not None:
            kwargs["negative_prompt_embeds"] = request.negative_embeds["prompt_embeds"]
        return kwargs

    def sample(self, model: LoadedModel, request: SampleRequest) -> list[Image.Image]:
        """One image from cached embeddings with a seeded generator on the model's device."""
        import torch

        unet = model.pipeline.unet
        was_training = unet.training
        unet.eval()
        guidance = request.guidance_scale
        if guidance is None:
            guidance = self.spec.default_guidance_scale
        try:
            with torch.no_grad():
                generator = torch.Generator(model.device).manual_seed(request.seed)
                result = model.pipeline(
                    num_inference_steps=request.steps,
                    guidance_scale=guidance,
                    width=request.width,
                    height=request.height,
                    generator=generator,
                    output_type="pil",
                    **self._sample_kwargs(model, request),
                )
        finally:
            unet.train(was_training)
        return [result.images[0]]

    def _adapter_metadata(self, model: LoadedModel) -> dict[str, Any] | None:
        config = getattr(self.denoiser(model), "peft_config", {}).get("default")
        return config.to_dict() if config is not None else None

    def save_lora(
        self,
        model: LoadedModel,
        lora_state_dict: dict[str, torch.Tensor],
        path: Path,
        metadata: dict[str, str],
    ) -> None:
        """Pipeline.save_lora_weights (unet_ prefix) and then our metadata into the header."""
        from training.lora_files import add_metadata

        self._pipeline_class().save_lora_weights(
            save_directory=str(path.parent),
            unet_lora_layers=lora_state_dict,
            weight_name=path.name,
            safe_serialization=True,
            unet_lora_adapter_metadata=self._adapter_metadata(model),
        )
        add_metadata(path, metadata)

    def comfyui_module(self, module: str) -> NativeModule:
        """kohya's name for a UNet module: lora_unet_<diffusers path with underscores>."""
        return NativeModule(module.replace(".", "_"))

    def load_lora(
        self, model: LoadedModel, path: Path, adapter_name: str, denoiser: str = ""
    ) -> None:
        """pipeline.load_lora_weights accepts both the diffusers and the kohya layout."""
        model.pipeline.load_lora_weights(str(path), adapter_name=adapter_name)

    def make_tiny(self, out_dir: Path) -> Path:
        """Tiny random SD 1.5-shaped pipeline: toy CLIP, 4-level VAE, 2-level UNet."""
        import torch
        from diffusers import DDIMScheduler, StableDiffusionPipeline

        from training.models.tiny_parts import TINY_SEED, tiny_clip, tiny_vae

        torch.manual_seed(TINY_SEED)
        tokenizer, text_encoder = tiny_clip()
        pipe = StableDiffusionPipeline(
            vae=tiny_vae(),
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=_tiny_unet(cross_attention_dim=32),
            scheduler=DDIMScheduler(
                beta_start=0.00085,
                beta_end=0.012,
                beta_schedule="scaled_linear",
                clip_sample=False,
                set_alpha_to_one=False,
                steps_offset=1,
            ),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.save_pretrained(str(out_dir), safe_serialization=True)
        return out_dir


def _tiny_unet(cross_attention_dim: int, **extra: Any) -> Any:
    """Two-level UNet2DConditionModel with cross-attention, SD-shaped but tiny."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=4,
        norm_num_groups=8,
        **extra,
    )


def resolve_source(family: Family, source: str) -> str:
    """Map 'builtin:<name>' to a tiny model built once in the temp folder; others unchanged."""
    if not source.startswith(BUILTIN_PREFIX):
        local = Path(source).expanduser()
        if source.startswith((".", "/", "~")) and not local.is_dir():
            raise ModelLoadError(f"base model folder {source!r} does not exist")
        return str(local) if local.is_dir() else source
    folder = Path(tempfile.gettempdir()) / "attune-tiny" / family.spec.name
    if not (folder / "model_index.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent))
        family.make_tiny(staging)
        try:
            staging.rename(folder)
        except OSError:  # another process won the race; its copy is identical
            shutil.rmtree(staging, ignore_errors=True)
    return str(folder)
