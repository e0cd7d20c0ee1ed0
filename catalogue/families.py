"""The base-model families Attune trains: one entry per family, read by app and training.

Adding a family is one engine module under ``training/models/`` plus one entry here. The
app takes labels, limits, GPU class, default source, preset steps and learning rates from
here; the engine builds its ``FamilySpec`` from the same entry (``FamilySpec.from_catalogue``)
and adds what only the engine needs (pipeline class, prediction type, guidance).
``tests/training/test_catalogue.py`` fails when the two sides disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TINY_SOURCE_PREFIX = "tiny:"  # "tiny:<family>": the worker builds the tiny random model


@dataclass(frozen=True)
class FamilyFacts:
    """What is known about a family before any model is loaded."""

    name: str
    label: str
    media: Literal["image", "video"]
    module: str  # engine module under training.models that implements the family
    hub_id: str  # the published base model; "" for tiny random families built on first use
    gpu_class: str  # the RQ queue (GPU class) it trains on; ATTUNE_QUEUE_<FAMILY> overrides
    default_resolution: int  # bucket area target is resolution**2 pixels
    min_resolution: int
    max_resolution: int
    resolution_multiple: int  # VAE factor x patch size
    base_steps: int  # steps of a character LoRA on ~20 items; other presets scale from it
    learning_rate: float
    seconds_per_step: float  # on its GPU class at the default resolution, for estimates
    startup_seconds: int  # load, cache and export around the steps, for estimates
    # How the frozen base loads on its GPU class: "none" (full precision) or weight-only
    # "int8"/"fp8" (training/quantize.py) where that is what makes it fit the class.
    quantize: Literal["none", "int8", "fp8"] = "none"
    fps: int | None = None  # video: frames per second the model was trained at
    max_frames: int = 0  # video: longest clip in frames
    frame_step: int = 1  # video: clip lengths are k * frame_step + 1 (the VAE's time factor)
    # video: the shortest clip it trains on (stills still train as 1-frame clips); a shorter clip
    # is refused before a run is queued (catalogue.media).
    min_clip_frames: int = 1
    # What the exported LoRA files say they are, for A1111/Forge, Civitai and ComfyUI managers:
    # ModelSpec ``modelspec.architecture`` (without "/lora") and ``modelspec.implementation``,
    # kohya's ``ss_base_model_version`` and the kohya/musubi ``ss_network_module`` of the
    # family's ComfyUI file ("" where no such trainer module exists). Values as the trainers
    # that write them do: kohya-ss/sd-scripts ``library/sai_model_spec.py`` (SD 1, SDXL,
    # FLUX.1, z-image-turbo; "sd_v1"/"sdxl_base_v1-0"/"flux1"), kohya-ss/musubi-tuner
    # ``utils/sai_model_spec.py`` (wan2.1, Qwen-Image, Flux.2-dev/-klein-4b, their networks.*).
    # Wan 2.2 and LTX-2 have no entry in either: ours follow the same pattern.
    architecture: str = ""
    implementation: str = ""
    base_model_version: str = ""
    network_module: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if self.media not in ("image", "video"):
            raise ValueError(f"{self.name}: media must be 'image' or 'video'")
        if not self.min_resolution <= self.default_resolution <= self.max_resolution:
            raise ValueError(f"{self.name}: default resolution outside its range")
        if self.media == "video" and (self.fps is None or self.max_frames < 1):
            raise ValueError(f"{self.name}: a video family needs fps and max_frames")
        if self.quantize not in ("none", "int8", "fp8"):
            raise ValueError(f"{self.name}: quantize must be 'none', 'int8' or 'fp8'")
        if self.media == "video" and self.min_clip_frames not in self.frame_counts:
            raise ValueError(f"{self.name}: min_clip_frames must be one of its clip lengths")
        if not (self.architecture and self.implementation and self.base_model_version):
            raise ValueError(f"{self.name}: LoRA files need its architecture and base version")

    @property
    def is_video(self) -> bool:
        """True for families that train on clips rather than still images."""
        return self.media == "video"

    @property
    def frame_counts(self) -> tuple[int, ...]:
        """Clip lengths the family accepts (k * frame_step + 1); () for image families."""
        if not self.is_video:
            return ()
        return tuple(range(1, self.max_frames + 1, self.frame_step))

    @property
    def default_source(self) -> str:
        """Where the worker loads the base model from unless ATTUNE_MODEL_<FAMILY> says else."""
        return self.hub_id or f"{TINY_SOURCE_PREFIX}{self.name}"

    @property
    def env_suffix(self) -> str:
        """The family's part of ATTUNE_MODEL_<FAMILY> / ATTUNE_QUEUE_<FAMILY>."""
        return self.name.upper().replace("-", "_").replace(".", "_")


FAMILIES: dict[str, FamilyFacts] = {
    facts.name: facts
    for facts in (
        FamilyFacts(
            name="tiny-sd",
            label="Tiny SD (CPU demo)",
            media="image",
            module="training.models.tiny_sd",
            hub_id="",
            gpu_class="gpu-cpu",
            default_resolution=64,
            min_resolution=32,
            max_resolution=512,
            resolution_multiple=16,
            base_steps=30,
            learning_rate=5e-4,
            # The worker on the 2-vCPU dev VM under load, samples and checkpoints included
            # (3,000 steps in about 4 min); the bench's bare steps are 0.013-0.019 s.
            seconds_per_step=0.08,
            startup_seconds=10,
            architecture="stable-diffusion-v1",
            implementation="diffusers",
            base_model_version="sd_v1",
            network_module="networks.lora",
            notes="Random weights; produces noise-like images. For demos and tests only.",
        ),
        FamilyFacts(
            name="sd15",
            label="Stable Diffusion 1.5",
            media="image",
            module="training.models.sd15",
            hub_id="stable-diffusion-v1-5/stable-diffusion-v1-5",
            gpu_class="gpu-24gb",
            default_resolution=512,
            min_resolution=256,
            max_resolution=1024,
            resolution_multiple=64,
            base_steps=1500,
            learning_rate=1e-4,
            seconds_per_step=0.25,
            startup_seconds=90,
            architecture="stable-diffusion-v1",
            implementation="diffusers",
            base_model_version="sd_v1",
            network_module="networks.lora",
        ),
        FamilyFacts(
            name="sdxl",
            label="Stable Diffusion XL",
            media="image",
            module="training.models.sdxl",
            hub_id="stabilityai/stable-diffusion-xl-base-1.0",
            gpu_class="gpu-24gb",
            default_resolution=1024,
            min_resolution=256,
            max_resolution=2048,
            resolution_multiple=64,
            base_steps=1500,
            learning_rate=1e-4,
            seconds_per_step=0.55,
            startup_seconds=150,
            architecture="stable-diffusion-xl-v1-base",
            implementation="https://github.com/Stability-AI/generative-models",
            base_model_version="sdxl_base_v1-0",
            network_module="networks.lora",
        ),
        FamilyFacts(
            name="flux-dev",
            label="FLUX.1 [dev]",
            media="image",
            module="training.models.flux",
            hub_id="black-forest-labs/FLUX.1-dev",
            gpu_class="gpu-80gb",
            default_resolution=1024,
            min_resolution=256,
            max_resolution=1536,
            resolution_multiple=16,
            base_steps=1000,
            learning_rate=1e-4,
            seconds_per_step=0.45,
            startup_seconds=240,
            architecture="flux-1-dev",
            implementation="https://github.com/black-forest-labs/flux",
            base_model_version="flux1",
            network_module="networks.lora_flux",
            notes="Guidance-distilled: samples use the guidance input, not CFG; "
            "negative prompts unused.",
        ),
        FamilyFacts(
            name="qwen-image",
            label="Qwen-Image",
            media="image",
            module="training.models.qwen_image",
            hub_id="Qwen/Qwen-Image",
            gpu_class="gpu-80gb",  # 20B transformer in bf16 (41 GB); 24 GB needs quantised weights
            default_resolution=1024,
            min_resolution=256,
            max_resolution=1536,
            resolution_multiple=16,
            base_steps=2000,  # ai-toolkit train_lora_qwen_image_24gb.yaml
            learning_rate=1e-4,
            seconds_per_step=1.2,  # SimpleTuner's H100 figure at 1024 px; an estimate until benched
            startup_seconds=360,
            architecture="Qwen-Image",
            implementation="https://github.com/QwenLM/Qwen-Image",
            base_model_version="qwen_image",
            network_module="networks.lora_qwen_image",
            notes="Samples use true classifier-free guidance (4.0) against the empty prompt.",
        ),
        FamilyFacts(
            name="z-image",
            label="Z-Image Turbo",
            media="image",
            module="training.models.z_image",
            hub_id="Tongyi-MAI/Z-Image-Turbo",
            gpu_class="gpu-24gb",  # 6B transformer in bf16 (12 GB) with gradient checkpointing
            default_resolution=1024,
            min_resolution=256,
            max_resolution=1536,
            resolution_multiple=16,
            base_steps=3000,  # ai-toolkit train_lora_zimage_turbo_32gb.yaml
            learning_rate=1e-4,
            seconds_per_step=1.11,  # public int8 figure from the issue; an estimate until benched
            startup_seconds=180,
            architecture="z-image-turbo",
            implementation="https://github.com/Tongyi-MAI/Z-Image",
            base_model_version="z_image_turbo",
            network_module="networks.lora_zimage",
            notes="Step-distilled: trains with a de-distillation adapter merged into the base "
            "(not into the LoRA); samples take 8 steps without CFG.",
        ),
        FamilyFacts(
            name="wan21-t2v-1.3b",
            label="Wan 2.1 T2V 1.3B",
            media="video",
            module="training.models.wan",
            hub_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
            gpu_class="gpu-80gb",
            default_resolution=480,
            min_resolution=256,
            max_resolution=720,
            resolution_multiple=16,
            base_steps=1500,
            learning_rate=5e-5,
            seconds_per_step=1.4,
            startup_seconds=240,
            fps=16,
            max_frames=81,
            frame_step=4,
            min_clip_frames=5,  # a clip of under 5 frames would train as a still
            architecture="wan2.1",
            implementation="https://github.com/Wan-Video/Wan2.1",
            base_model_version="wan2.1_t2v_1.3b",
            network_module="networks.lora_wan",
            notes="Video at 16 fps, 4k+1 frames up to 81; images train as 1-frame clips.",
        ),
        # FLUX.2: 16 px multiples (8x VAE, 2x2 patches). Recipes: diffusers README_flux2.md
        # and musubi-tuner docs/flux_2.md (lr 1e-4, rank 16-32, ~500-1500 steps). The s/step
        # and start-up figures are estimates until bench/train_speed.py has run on a GPU.
        FamilyFacts(
            name="flux2-dev",
            label="FLUX.2 [dev]",
            media="image",
            module="training.models.flux2",
            hub_id="black-forest-labs/FLUX.2-dev",
            gpu_class="gpu-80gb",  # bf16 32B transformer (64 GB); the 24B encoder is staged
            default_resolution=1024,
            min_resolution=256,
            max_resolution=2048,
            resolution_multiple=16,
            base_steps=1000,
            learning_rate=1e-4,
            seconds_per_step=2.5,
            startup_seconds=600,
            architecture="Flux.2-dev",
            implementation="https://github.com/black-forest-labs/flux2",
            base_model_version="flux2_dev",
            network_module="networks.lora_flux_2",
            notes="Guidance-distilled: samples use the guidance input, not CFG; "
            "negative prompts unused. Non-commercial licence (FLUX.2 [dev]).",
        ),
        FamilyFacts(
            name="flux2-klein",
            label="FLUX.2 [klein] base 4B",
            media="image",
            module="training.models.flux2_klein",
            hub_id="black-forest-labs/FLUX.2-klein-base-4B",
            gpu_class="gpu-24gb",
            default_resolution=1024,
            min_resolution=256,
            max_resolution=2048,
            resolution_multiple=16,
            base_steps=1000,
            learning_rate=1e-4,
            seconds_per_step=0.8,
            startup_seconds=180,
            quantize="int8",  # as ai-toolkit's klein preset: int8 base leaves room at 1024 px
            architecture="Flux.2-klein-4b",
            implementation="https://github.com/black-forest-labs/flux2",
            base_model_version="flux2_klein_4b",
            network_module="networks.lora_flux_2",
            notes="Undistilled base: samples use CFG with an empty negative prompt. Apache-2.0.",
        ),
        # The video families below are estimates until benched on their GPU class (BENCHMARKS.md):
        # s/step scaled from the public Wan 2.1 14B figure (7.2 s/step at 832x480x81, H100) by
        # parameters x tokens; start-up covers loading, caching and the verified export.
        FamilyFacts(
            name="wan22-ti2v-5b",
            label="Wan 2.2 TI2V 5B",
            media="video",
            module="training.models.wan22",
            hub_id="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
            # 24 GB by arithmetic, not yet measured (bench/memory.py): int8 5B transformer
            # ~5 GB, umT5 staged apart while caching, checkpointing retried on out-of-memory.
            gpu_class="gpu-24gb",
            quantize="int8",
            default_resolution=704,  # the 720p model card size is 1280x704
            min_resolution=256,
            max_resolution=1024,
            resolution_multiple=32,  # 16x VAE x 2x2 patches
            base_steps=1500,
            learning_rate=1e-4,
            seconds_per_step=2.0,
            startup_seconds=300,
            fps=24,
            max_frames=121,
            frame_step=4,
            min_clip_frames=5,
            architecture="wan2.2-ti2v-5b",
            implementation="https://github.com/Wan-Video/Wan2.2",
            base_model_version="wan2.2_ti2v_5b",
            network_module="networks.lora_wan",
            notes="Text-to-video LoRA at 24 fps, 4k+1 frames up to 121; images train as 1-frame "
            "clips.",
        ),
        FamilyFacts(
            name="wan22-t2v-a14b",
            label="Wan 2.2 T2V A14B (high + low noise)",
            media="video",
            module="training.models.wan22_experts",
            hub_id="Wan-AI/Wan2.2-T2V-A14B-Diffusers",
            gpu_class="gpu-80gb",
            default_resolution=480,
            min_resolution=256,
            max_resolution=720,
            resolution_multiple=16,
            base_steps=2000,  # alternating: each expert trains half of them
            learning_rate=1e-4,
            seconds_per_step=4.5,
            startup_seconds=600,
            fps=16,
            max_frames=81,
            frame_step=4,
            min_clip_frames=5,
            architecture="wan2.2-t2v-a14b",
            implementation="https://github.com/Wan-Video/Wan2.2",
            base_model_version="wan2.2_t2v_a14b",
            network_module="networks.lora_wan",
            notes="Two experts, two LoRAs: high-noise and low-noise, one file each per format "
            "(load each on its own model in ComfyUI). 16 fps, 4k+1 frames up to 81.",
        ),
        FamilyFacts(
            name="ltx2",
            label="LTX-2 (video)",
            media="video",
            module="training.models.ltx2",
            hub_id="Lightricks/LTX-2",
            gpu_class="gpu-80gb",
            default_resolution=512,  # 768x512 is the pipeline's default size
            min_resolution=256,
            max_resolution=1024,
            resolution_multiple=32,
            base_steps=2000,
            learning_rate=1e-4,
            seconds_per_step=3.0,
            startup_seconds=600,
            fps=24,
            max_frames=121,
            frame_step=8,
            min_clip_frames=9,
            architecture="ltx-2",
            implementation="https://github.com/Lightricks/LTX-2",
            base_model_version="ltx2",
            notes="Video LoRA trained on clips without sound (the audio branch is left as it "
            "is); 24 fps, 8k+1 frames up to 121.",
        ),
    )
}

FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)


def family_facts(name: str) -> FamilyFacts:
    """The catalogue entry for `name`; KeyError names the known families."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown family {name!r}; known: {', '.join(FAMILY_NAMES)}") from None


def families_of(media: str) -> tuple[str, ...]:
    """Names of the families that train on `media` ("image" or "video"), in catalogue order."""
    return tuple(name for name, facts in FAMILIES.items() if facts.media == media)
