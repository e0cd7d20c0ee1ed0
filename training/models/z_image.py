"""Z-Image Turbo: a 6B single-stream DiT (S3-DiT), Qwen3 prompts, FLUX's 16-channel VAE.

Follows diffusers 0.42.1 ``pipelines/z_image/pipeline_z_image.py`` and
``models/transformers/transformer_z_image.py``, and the training step of diffusers
``examples/dreambooth/train_dreambooth_lora_z_image.py``:

* Prompts: the pipeline's own ``encode_prompt`` (Qwen3 chat template, second-to-last hidden
  state, padding removed), cached zero-padded to 512 tokens with a mask (``prompt_padding``);
  the transformer takes one unpadded tensor per item, as the pipeline passes them.
* Latents: ``(mode - shift_factor) * scaling_factor`` of the FLUX VAE; the transformer takes a
  list of (C, 1, H, W) latents and patches them 2x2 itself.
* Target and timesteps: rectified flow, ``(1 - s) x + s noise``; the transformer is fed
  ``1 - s`` and predicts ``x - noise``, so its output is negated against the target
  ``noise - x`` (the example's ``model_pred = -model_pred``). Sigmas are logit-normal, shifted
  by the scheduler's own shift (Turbo: a fixed 3.0), as the sampler visits them.
* LoRA targets: every linear of every block (attention q/k/v/out, the SwiGLU w1/w2/w3) in the
  main layers and both refiners, as ai-toolkit and musubi-tuner train Z-Image (the diffusers
  example's default is attention only).

Turbo is step-distilled (8 steps, no CFG). A LoRA trained on it directly pulls it away from its
distillation and samples degrade at 8 steps; the published remedy, ai-toolkit's recipe
(``train_lora_zimage_turbo_32gb.yaml``), trains with ostris' *training adapter*
(``ostris/zimage_turbo_training_adapter``, v2), a LoRA that de-distills Turbo. We use it and not
the separate de-distilled base (Tongyi-MAI/Z-Image) because the LoRA is then trained against
Turbo's own weights and used on plain Turbo at 8 steps, which is what people run; a LoRA
trained on the base transfers to Turbo only approximately. The adapter is merged into the
frozen base for training only and is absent from both exported files and from "try it"
(``training_adapter``); samples during training subtract it again. It comes from a local folder
or hub id like the base: ``TrainingConfig.training_adapter`` ("" = ``<base folder>/
training_adapter/`` when there is one, else the published v2 file; "none" = train on bare Turbo).

ComfyUI file: newer ComfyUI loads Z-Image under its original checkpoint names (the layout
diffusers' ``convert_z_image_transformer_checkpoint_to_diffusers`` reads: fused
``attention.qkv``, ``attention.out``, ``feed_forward.w1/w2/w3``) and maps LoRA keys
``diffusion_model.<module>`` onto them through its generic path; the Oct 2025 ComfyUI snapshot
predates Z-Image. q/k/v go into the fused ``qkv`` as one block-diagonal LoRA (``native_lora``).
Keys use the ``.lora.down/.lora.up`` spelling, which ComfyUI reads and which is the spelling
diffusers 0.42.1 splits a fused ``qkv`` LoRA back from.
"""

from __future__ import annotations

import re
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
from training.models.native_lora import DOT_SPELLING, NativeModule
from training.models.prompt_padding import pad_prompt_tokens, valid_tokens

if TYPE_CHECKING:
    import torch
    from PIL import Image

ADAPTER_FILE = "zimage_turbo_training_adapter_v2.safetensors"
SPEC = FamilySpec.from_catalogue(
    "z-image",
    pipeline_class="ZImagePipeline",
    prediction="flow_matching",
    flow_shift=3.0,  # Turbo's scheduler shift; the loaded config wins
    default_guidance_scale=0.0,  # Turbo is distilled without CFG
    training_adapter=f"ostris/zimage_turbo_training_adapter/{ADAPTER_FILE}",
)

LORA_TARGETS = [
    "attention.to_q",
    "attention.to_k",
    "attention.to_v",
    "attention.to_out.0",
    "feed_forward.w1",
    "feed_forward.w2",
    "feed_forward.w3",
]
MAX_PROMPT_TOKENS = 512  # ZImagePipeline's max_sequence_length
_BLOCK_RE = re.compile(r"^((?:layers|noise_refiner|context_refiner)\.\d+)\.(.+)$")
_SAME_NAME = ("feed_forward.w1", "feed_forward.w2", "feed_forward.w3", "adaLN_modulation.0")


class ZImageFamily(FlowTransformerFamily):
    """Z-Image Turbo LoRA training: ZImagePipeline, ZImageTransformer2DModel, Qwen3."""

    spec = SPEC
    pipeline_class_name = "ZImagePipeline"
    comfyui_spelling = DOT_SPELLING
    text_components = ("text_encoder", "tokenizer")

    def encode_prompts(self, model: LoadedModel, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Qwen3 states of the chat-templated prompts, (N, 512, D) zero-padded, and a mask."""
        import torch

        pipe = model.pipeline
        if pipe.text_encoder is None:
            raise ModelLoadError("the Z-Image text encoder was not loaded (text_encoders=False)")
        with torch.no_grad():  # encode_prompt rewrites the list it is given: pass a copy
            embeds, _ = pipe.encode_prompt(
                prompt=list(prompts),
                device=model.device,
                do_classifier_free_guidance=False,
                max_sequence_length=MAX_PROMPT_TOKENS,
            )
        padded, mask = pad_prompt_tokens(embeds, MAX_PROMPT_TOKENS)
        return {"prompt_embeds": padded, "prompt_embeds_mask": mask}

    def encode_media(self, model: LoadedModel, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, 16, H/8, W/8) latents, shifted then scaled (mode)."""
        import torch

        vae = model.pipeline.vae
        with torch.no_grad():
            latents = vae.encode(pixels.to(model.device, vae.dtype)).latent_dist.mode()
        return (latents - vae.config.shift_factor) * vae.config.scaling_factor

    def lora_target_modules(self) -> list[str]:
        """Attention and SwiGLU linears of every block and refiner (see LORA_TARGETS)."""
        return list(LORA_TARGETS)

    def prepare_training(self, model: LoadedModel, training_adapter: str) -> None:
        """Merge the de-distillation training adapter into the frozen base (see module doc)."""
        from training.models.sd import resolve_source
        from training.models.training_adapter import adapter_source, merge_adapter

        base_folder = resolve_source(self, model.source)
        source = adapter_source(training_adapter, base_folder, self.spec.training_adapter)
        if source is not None:
            merge_adapter(model, source, self.denoiser(model))

    def training_loss(
        self, model: LoadedModel, batch: LatentBatch, generator: torch.Generator
    ) -> torch.Tensor:
        """Flow-matching MSE against the negated prediction, shifted logit-normal sigmas."""
        import torch

        pipe, dtype = model.pipeline, model.dtype
        latents = batch.latents
        height, width = latents.shape[-2:]
        shift = self.flow_shift(pipe.scheduler.config, (height // 2) * (width // 2))
        sigmas = sample_sigmas(latents.shape[0], shift, generator, latents.device)
        noisy, target = noisy_latents_and_target(latents, sigmas, generator)
        captions = valid_tokens(
            batch.embeds["prompt_embeds"].to(dtype), batch.embeds["prompt_embeds_mask"]
        )
        predicted = pipe.transformer(
            list(noisy.to(dtype).unsqueeze(2).unbind(0)),  # (C, 1, H, W) per item
            1.0 - sigmas,  # Z-Image's time runs from 0 (noise) to 1 (clean)
            captions,
            return_dict=False,
        )[0]
        return velocity_loss(-torch.stack(predicted).squeeze(2), target)

    def flow_shift(self, scheduler_config: Any, patches: int) -> float:
        """The scheduler's shift: its fixed ``shift``, or e**mu when it shifts by resolution."""
        if scheduler_config.get("use_dynamic_shifting"):
            return resolution_shift(patches, scheduler_config)
        return float(scheduler_config.get("shift") or self.spec.flow_shift or 1.0)

    def sample(self, model: LoadedModel, request: SampleRequest) -> list[Image.Image]:
        """One image on the plain base plus the LoRA (the training adapter taken out)."""
        from training.models.training_adapter import without_adapter

        guidance = request.guidance_scale
        if guidance is None:
            guidance = self.spec.default_guidance_scale
        kwargs: dict[str, Any] = {"prompt_embeds": self._captions(model, request.embeds)}
        if guidance > 0 and request.negative_embeds is not None:
            kwargs["negative_prompt_embeds"] = self._captions(model, request.negative_embeds)
        else:
            guidance = 0.0  # CFG would re-encode "" with the text encoder, gone by now
        with self._inference(model), without_adapter(model, self.denoiser(model)):
            result = model.pipeline(
                **kwargs,
                guidance_scale=guidance,
                num_inference_steps=request.steps,
                width=request.width,
                height=request.height,
                generator=self._generator(model, request.seed),
                output_type="pil",
            )
        return [result.images[0]]

    def _captions(self, model: LoadedModel, embeds: dict[str, torch.Tensor]) -> list[Any]:
        """Cached embeddings as the pipeline takes them: one unpadded tensor per prompt."""
        tokens = embeds["prompt_embeds"].to(model.device, model.dtype)
        return valid_tokens(tokens, embeds["prompt_embeds_mask"].to(model.device))

    def comfyui_module(self, module: str) -> NativeModule | None:
        """Original names: ``diffusion_model.layers.N.attention.qkv.lora.down.weight`` etc."""
        return _native_module(module)

    def make_tiny(self, out_dir: Path) -> Path:
        """Tiny random Z-Image: toy Qwen3, 4-channel VAE, 2 layers + 1 refiner each, an adapter."""
        import torch
        from diffusers import (
            FlowMatchEulerDiscreteScheduler,
            ZImagePipeline,
            ZImageTransformer2DModel,
        )

        from training.models.tiny_parts import TINY_SEED, tiny_vae
        from training.models.tiny_qwen import build_toy_qwen_tokenizer, tiny_qwen3

        torch.manual_seed(TINY_SEED)
        tokenizer = build_toy_qwen_tokenizer(max_length=MAX_PROMPT_TOKENS)
        vae = tiny_vae(flux_layout=True)  # FLUX.1's VAE: one shift and one scale
        pipe = ZImagePipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(
                num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=False
            ),
            vae=vae,
            text_encoder=tiny_qwen3(len(tokenizer)),
            tokenizer=tokenizer,
            transformer=ZImageTransformer2DModel(
                in_channels=4,
                dim=32,
                n_layers=2,
                n_refiner_layers=1,
                n_heads=2,
                n_kv_heads=2,
                cap_feat_dim=32,  # the toy Qwen3's hidden size
                axes_dims=[8, 4, 4],  # sums to the head size, 32 / 2
                axes_lens=[1024, 64, 64],
            ),
        )
        pipe.save_pretrained(str(out_dir), safe_serialization=True)
        write_tiny_adapter(pipe.transformer, out_dir / "training_adapter" / ADAPTER_FILE)
        return out_dir


def write_tiny_adapter(transformer: torch.nn.Module, path: Path, rank: int = 2) -> Path:
    """A random rank-2 adapter over every LoRA target, in ai-toolkit's Z-Image layout."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(1)
    tensors = {}
    for name, module in transformer.named_modules():
        if any(name.endswith(target) for target in LORA_TARGETS):
            out_features, in_features = module.weight.shape
            key = f"diffusion_model.{name}"
            tensors[f"{key}.lora_A.weight"] = 0.2 * torch.randn(
                rank, in_features, generator=generator
            )
            tensors[f"{key}.lora_B.weight"] = 0.2 * torch.randn(
                out_features, rank, generator=generator
            )
            tensors[f"{key}.alpha"] = torch.tensor(float(rank))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def _native_module(module: str) -> NativeModule | None:
    """Z-Image's original checkpoint name for a diffusers module (q/k/v fused into qkv)."""
    match = _BLOCK_RE.match(module)
    if match is None:
        return None
    block, inner = match[1], match[2]
    if inner in ("attention.to_q", "attention.to_k", "attention.to_v"):
        return NativeModule(f"{block}.attention.qkv", slot="qkv".index(inner[-1]), parts=3)
    if inner == "attention.to_out.0":
        return NativeModule(f"{block}.attention.out")
    return NativeModule(f"{block}.{inner}") if inner in _SAME_NAME else None


FAMILY = ZImageFamily()
