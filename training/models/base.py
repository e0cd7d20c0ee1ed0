"""The one interface every model family implements (SD 1.5, SDXL, FLUX, Wan, ...).

A family module (``training/models/<family>.py``) defines a ``FamilySpec`` and a ``Family``
subclass, and exposes an instance as the module attribute ``FAMILY``. The registry in
``training/models/__init__.py`` imports the module lazily by name.

Rules for family modules:

* Importable without torch/diffusers/transformers: ``TrainingConfig`` validation and
  ``plan_buckets`` read ``FAMILY.spec`` in light processes. Import heavy libraries inside
  methods (``if TYPE_CHECKING:`` imports are fine for annotations).
* Stateless: everything loaded lives in the ``LoadedModel`` that ``load`` returns.
* The trainer never branches on the family name; anything model-specific belongs here.

Tensor conventions (B = batch, C = latent channels, F = latent frames, H/W = latent size):

* pixels: float in [-1, 1]; images (B, 3, H*s, W*s); video (B, 3, frames, H*s, W*s) where s is
  the VAE's spatial factor and ``frames`` one of ``spec.frame_counts``.
* latents: images (B, C, H, W); video (B, C, F, H, W); already normalised into the space the
  denoiser trains in (scaling/shift factors applied), so ``training_loss`` uses them as given.
* ``PromptEmbeds``: dict name -> tensor with the batch first, e.g. SD 1.5
  ``{"prompt_embeds": (B, 77, 768)}``, SDXL ``{"prompt_embeds": (B, 77, 2048),
  "pooled_prompt_embeds": (B, 1280)}``. Every tensor must have the same shape for every prompt
  beyond dim 0 (pad to a fixed length) so the trainer can cache per item and ``torch.cat``.

Video I/O contract (``training/video.py``, written alongside the Wan family); the data code
imports it lazily and calls exactly these:

* ``probe_clip(path) -> ClipProbe`` with ``width``, ``height`` (int, display orientation),
  ``fps`` (float) and ``frame_count`` (int); reads headers only; raises on an unreadable file.
* ``read_clip(path, fps, frame_counts, max_side) -> ClipInfo`` with ``frames``
  (list of RGB ``PIL.Image``), resampled to ``fps``, the longest length in ``frame_counts``
  that the clip holds, the longer side scaled down to at most ``max_side`` (never up).
* ``write_mp4(frames, path, fps)`` and ``write_webp(frames, path, fps)`` write PIL frames.
"""

from __future__ import annotations

import gc
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from catalogue.families import family_facts
from training.errors import ModelLoadError
from training.models.native_lora import KOHYA_SPELLING, NATIVE_PREFIX, NativeModule

if TYPE_CHECKING:
    import torch
    from PIL import Image

PromptEmbeds = dict[str, "torch.Tensor"]
"""Cached text conditioning for a batch of prompts; see the module docstring for shapes."""


@dataclass(frozen=True)
class FamilySpec:
    """Static facts about a family, readable without importing torch."""

    name: str
    media: Literal["image", "video"]
    default_base_model: str  # hub id used when TrainingConfig.base_model is empty
    pipeline_class: str  # diffusers pipeline class name, e.g. "StableDiffusionPipeline"
    default_resolution: int  # bucket area target is resolution**2 pixels
    min_resolution: int
    max_resolution: int
    size_multiple: int  # bucket width/height are multiples of this (VAE factor x patch size)
    prediction: Literal["epsilon", "v_prediction", "scheduler", "flow_matching"]
    # Flow-matching timestep shift; None for DDPM families and for FLUX, whose shift depends on
    # the resolution (e**mu from the scheduler's base/max shift).
    flow_shift: float | None = None
    fps: int | None = None  # video: frames per second the model was trained at
    frame_counts: tuple[int, ...] = ()  # video: allowed clip lengths in frames, e.g. (17, 33, 81)
    min_clip_frames: int = 1  # video: shortest clip used (stills train as 1-frame clips)
    default_guidance_scale: float = 7.5
    # A LoRA merged into the frozen base while training only, never exported (e.g. Z-Image
    # Turbo's de-distillation adapter): its hub id; "" = the family trains on the bare base.
    training_adapter: str = ""
    notes: str = ""

    @property
    def is_video(self) -> bool:
        """True for families that train on clips rather than still images."""
        return self.media == "video"

    @classmethod
    def from_catalogue(cls, name: str, default_base_model: str = "", **engine: Any) -> FamilySpec:
        """The spec of catalogue family `name`, plus the facts only the engine knows.

        Limits, media, frames and notes come from ``catalogue.families`` so the web app and the
        engine cannot disagree; ``default_base_model`` defaults to the catalogue's hub id.
        """
        facts = family_facts(name)
        return cls(
            name=facts.name,
            media=facts.media,
            default_base_model=default_base_model or facts.hub_id,
            default_resolution=facts.default_resolution,
            min_resolution=facts.min_resolution,
            max_resolution=facts.max_resolution,
            size_multiple=facts.resolution_multiple,
            fps=facts.fps,
            frame_counts=facts.frame_counts,
            min_clip_frames=facts.min_clip_frames,
            notes=facts.notes,
            **engine,
        )


@dataclass
class LoadedModel:
    """A loaded pipeline plus what the trainer needs to know about it."""

    pipeline: Any  # a diffusers DiffusionPipeline
    dtype: torch.dtype  # dtype of the frozen weights
    device: torch.device
    source: str  # the local folder or hub id it came from
    extras: dict[str, Any] = field(default_factory=dict)  # family-private state
    quantize: str = "none"  # weight-only quantisation of the denoisers ("none", "int8", "fp8")
    staged: tuple[str, ...] = ()  # denoisers waiting on the CPU until the encoders are freed


@dataclass(frozen=True)
class LatentBatch:
    """One training batch built from cached latents and cached prompt embeddings."""

    latents: torch.Tensor  # (B, C, H, W) or (B, C, F, H, W), on the model's device
    embeds: PromptEmbeds  # every tensor (B, ...) on the model's device
    original_sizes: tuple[tuple[int, int], ...]  # per item (height, width) of the source media
    crop_top_lefts: tuple[tuple[int, int], ...]  # per item (top, left) of the crop, in pixels
    denoiser: str = ""  # which of Family.denoisers this step trains ("" for the only one)


@dataclass(frozen=True)
class SampleRequest:
    """One sample to render: cached embeddings for a single prompt and fixed settings."""

    embeds: PromptEmbeds  # batch of 1
    negative_embeds: PromptEmbeds | None  # batch of 1; embeddings of "" for CFG families
    seed: int
    steps: int
    width: int
    height: int
    num_frames: int = 1  # video only: one of spec.frame_counts
    guidance_scale: float | None = None  # None = spec.default_guidance_scale


class Family(ABC):
    """A model family: load, encode, loss, LoRA targets, sample, save, make a tiny model."""

    spec: FamilySpec
    # The big frozen networks (component names) that load_frozen_pipeline quantises and stages.
    denoiser_components: tuple[str, ...] = ()
    # The ComfyUI/A1111 file's key layout (see comfyui_module and to_kohya).
    comfyui_prefix: str = NATIVE_PREFIX
    comfyui_spelling: tuple[str, str] = KOHYA_SPELLING
    comfyui_fold_alpha: bool = False

    @abstractmethod
    def load(
        self,
        source: str,
        *,
        dtype: torch.dtype,
        device: torch.device,
        text_encoders: bool = True,
        quantize: str = "none",
    ) -> LoadedModel:
        """Load the pipeline from a local hub-layout folder or hub id (``from_pretrained``).

        Frozen weights (``requires_grad_(False)``) in ``dtype`` on ``device``, eval mode.
        ``text_encoders=False`` skips text encoders and tokenizers (used to check LoRA files).
        ``quantize`` ("int8"/"fp8") loads the denoisers weight-only quantised through
        ``load_frozen_pipeline`` (training/quantize.py); the LoRA stays full precision.
        Raise ``ModelLoadError`` when the source is missing or not this family's layout.
        """

    @abstractmethod
    def encode_prompts(self, model: LoadedModel, prompts: list[str]) -> PromptEmbeds:
        """Encode prompts under no_grad; tensors (len(prompts), ...) on the model's device."""

    @abstractmethod
    def encode_media(self, model: LoadedModel, pixels: torch.Tensor) -> torch.Tensor:
        """VAE-encode pixels (see module docstring) to normalised latents, deterministic (mode)."""

    @abstractmethod
    def denoiser(self, model: LoadedModel) -> torch.nn.Module:
        """The module LoRA is added to and trained: ``pipeline.unet`` or ``.transformer``."""

    def denoisers(self, model: LoadedModel) -> dict[str, torch.nn.Module]:
        """Every module that gets its own LoRA, by name; "" names the only one of most families.

        A family with several (Wan 2.2 A14B: a high-noise and a low-noise expert) names each;
        the trainer gives each its own LoRA and steps only the one ``denoiser_at_step`` names.
        Checkpoints prefix each named denoiser's PEFT keys with ``"<name>."``; export writes
        ``<stem>_<name>.safetensors`` (and ``_comfyui``) per name, and ``TrainResult.lora_files``
        lists them as the download kinds ``lora_<name>``/``comfyui_<name>``. A family with
        several also lists each in ``denoiser_components`` so all of them are quantised.
        """
        return {"": self.denoiser(model)}

    def denoiser_at_step(self, step: int) -> str:
        """Name (a key of ``denoisers``) of the denoiser the zero-based ``step`` trains.

        A pure function of the step, so a resumed run trains the same denoiser at each step.
        """
        return ""

    @abstractmethod
    def lora_target_modules(self) -> list[str]:
        """Module-name suffixes in the denoiser to wrap with LoRA (PEFT ``target_modules``)."""

    @abstractmethod
    def training_loss(
        self, model: LoadedModel, batch: LatentBatch, generator: torch.Generator
    ) -> torch.Tensor:
        """Scalar fp32 loss for one batch: sample noise and timesteps, noise, predict, MSE.

        SD families: uniform DDPM timesteps, epsilon or v-prediction target per the scheduler
        config. Flow families: sigmas shifted by ``spec.flow_shift``, target ``noise - latents``.
        ``generator`` lives on the model's device and makes noise/timesteps reproducible.
        Only ``batch.denoiser`` may run (the trainer steps only that denoiser's LoRA).
        """

    @abstractmethod
    def sample(self, model: LoadedModel, request: SampleRequest) -> list[Image.Image]:
        """Render one sample from cached embeddings: [image] for images, frames for video.

        Must work after ``free_encoders`` (text encoders and VAE encoder gone); uses the
        denoiser as it is now, LoRA included. Restores the denoiser's train/eval mode.
        """

    @abstractmethod
    def save_lora(
        self,
        model: LoadedModel,
        lora_state_dict: dict[str, torch.Tensor],
        path: Path,
        metadata: dict[str, str],
    ) -> None:
        """Write the diffusers/PEFT LoRA file with the pipeline class's ``save_lora_weights``.

        ``lora_state_dict`` is the denoiser's fp32 state dict after
        ``convert_state_dict_to_diffusers(get_peft_model_state_dict(denoiser))``, without the
        ``unet.``/``transformer.`` prefix. ``metadata`` (str -> str) goes into the safetensors
        header next to diffusers' own keys.
        """

    @abstractmethod
    def comfyui_module(self, module: str) -> NativeModule | None:
        """Where a denoiser module's LoRA goes in the ComfyUI/A1111 file; None if nowhere.

        The name follows ``comfyui_prefix``: the original checkpoint's module (``blocks.0.
        self_attn.q``), or kohya's underscored name (``down_blocks_0_..._to_q``) for families
        whose community files use it. ``to_kohya`` writes and ``verify_lora_files`` checks the
        file through this one map.
        """

    def to_kohya(
        self, lora_state_dict: dict[str, torch.Tensor], alpha: float
    ) -> dict[str, torch.Tensor]:
        """The same state dict in the ComfyUI/A1111 layout (``comfyui_module``), with alpha.

        Keys ``<comfyui_prefix><name><comfyui_spelling>`` and ``.alpha`` (alpha / rank folded
        into the up weights instead when ``comfyui_fold_alpha``), fused projections combined
        block-diagonally; ComfyUI, A1111/Forge and diffusers' ``load_lora_weights`` read it.
        """
        from training.models.native_lora import native_lora

        return native_lora(
            lora_state_dict,
            alpha,
            self.comfyui_module,
            spelling=self.comfyui_spelling,
            fold_alpha=self.comfyui_fold_alpha,
            prefix=self.comfyui_prefix,
        )

    def diffusers_reads_comfyui(self, model: LoadedModel) -> bool:
        """Whether diffusers' converter can load this model's ComfyUI file (verification)."""
        del model  # true for every family unless its converter assumes published shapes
        return True

    @abstractmethod
    def load_lora(
        self, model: LoadedModel, path: Path, adapter_name: str, denoiser: str = ""
    ) -> None:
        """Load a LoRA file (either layout) into ``denoiser`` with ``load_lora_weights``."""

    @abstractmethod
    def make_tiny(self, out_dir: Path) -> Path:
        """Write a tiny random pipeline in hub layout (model_index.json + subfolders) to out_dir.

        Offline: tokenizers are built from small vocab files written here. Deterministic
        (fixed seed). Loadable by ``load(str(out_dir), ...)``. Returns out_dir.
        """

    # Concrete helpers shared by all families; override only with a reason.

    def free_encoders(self, model: LoadedModel) -> None:
        """Drop text encoders and the VAE encoder, then bring the staged denoisers to the device.

        A family that overrides this must call ``super().free_encoders(model)``: only here do
        staged (possibly quantised) denoisers reach the device, so a text encoder and the
        denoiser never share the GPU. ``training.generate`` encodes its prompts before it loads
        the LoRA for the same reason: the LoRA must wrap the placed layers.
        """
        from training.quantize import place_staged

        pipe = model.pipeline
        for name in ("text_encoder", "text_encoder_2", "text_encoder_3"):
            if getattr(pipe, name, None) is not None:
                setattr(pipe, name, None)
        vae = getattr(pipe, "vae", None)
        if vae is not None and getattr(vae, "encoder", None) is not None:
            vae.encoder = None
        release_memory(model)  # the encoders' memory goes back before the denoisers move in
        place_staged(model)

    def lora_modules(self, model: LoadedModel, adapter_name: str, denoiser: str = "") -> set[str]:
        """Names of ``denoiser``'s modules that carry LoRA weights for ``adapter_name``."""
        found = set()
        for name, module in self.denoisers(model)[denoiser].named_modules():
            lora_a = getattr(module, "lora_A", None)
            if lora_a is not None and adapter_name in lora_a:
                found.add(name)
        return found

    def load_lora_check(
        self,
        model: LoadedModel,
        path: Path,
        adapter_name: str,
        expected: set[str],
        denoiser: str = "",
    ) -> list[str]:
        """Load ``path`` into ``denoiser`` as ``adapter_name``; the expected modules it missed."""
        self.load_lora(model, path, adapter_name, denoiser)
        missed = sorted(expected - self.lora_modules(model, adapter_name, denoiser))
        return missed

    def prepare_training(self, model: LoadedModel, training_adapter: str) -> None:
        """Ready a loaded base for training, before the LoRA is added; by default nothing.

        ``training_adapter`` is ``TrainingConfig.training_adapter``: "" for the spec's default,
        "none", or a local file/folder or hub id. Only training calls this; sampling with
        ``sample`` must still render as the plain base plus the LoRA would.
        """
        del model, training_adapter  # most families train on the base exactly as loaded

    def compile_denoiser(self, model: LoadedModel) -> None:
        """Regionally torch.compile each denoiser's repeated blocks (faster than whole-model)."""
        for module in self.denoisers(model).values():
            module.compile_repeated_blocks(fullgraph=False, dynamic=False)


def release_memory(model: LoadedModel) -> None:
    """Collect garbage and return freed accelerator memory to the allocator's pool."""
    import torch

    gc.collect()
    if model.device.type == "cuda":
        torch.cuda.empty_cache()


def load_frozen_pipeline(
    pipeline_class: Any,
    location: str,
    *,
    source: str,
    family: str,
    dtype: torch.dtype,
    device: torch.device,
    omit: Iterable[str] = (),
    quantize: str = "none",
    denoisers: tuple[str, ...] = (),
    stage: bool = False,
) -> LoadedModel:
    """``pipeline_class.from_pretrained`` without ``omit`` components; frozen, eval, on device.

    ``denoisers`` are weight-only quantised when ``quantize`` is "int8"/"fp8"; with ``stage``
    (text encoders loaded) they wait on the CPU until ``Family.free_encoders`` places them.
    Loading errors become ModelLoadError naming the family and the source.
    """
    from training.quantize import QUANTIZE_MODES, place_staged

    if quantize not in QUANTIZE_MODES:
        raise ModelLoadError(f"quantize must be one of {', '.join(QUANTIZE_MODES)}")
    try:
        pipe = pipeline_class.from_pretrained(location, dtype=dtype, **dict.fromkeys(omit))
    except (OSError, ValueError, TypeError, KeyError, ImportError) as exc:
        raise ModelLoadError(f"cannot load {family} model from {source!r}: {exc}") from exc
    present = tuple(name for name in denoisers if getattr(pipe, name, None) is not None)
    for name, module in pipe.components.items():
        if hasattr(module, "requires_grad_") and name != "scheduler":
            module.requires_grad_(False)
            module.eval()
            if name not in present:
                module.to(device)
    pipe.set_progress_bar_config(disable=True)
    model = LoadedModel(
        pipeline=pipe, dtype=dtype, device=device, source=source, quantize=quantize, staged=present
    )
    if not stage:
        place_staged(model)
    return model
