"""generate(): render prompts with a trained LoRA at a chosen strength ("try it").

Loads the base pipeline through its family (same device and precision rules as training),
attaches the LoRA as one adapter weighted by ``strength`` and renders each prompt through the
family's own sample path, so a generation looks like the samples written during training.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from training.errors import ConfigError, ModelLoadError
from training.models import get_family
from training.models.base import FamilySpec, LoadedModel, SampleRequest

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from training.models.base import Family

ADAPTER = "attune"


def generate(
    family_name: str,
    base_model: str,
    lora_path: str | Path | Mapping[str, str | Path] | None,
    prompts: list[str],
    *,
    strength: float = 1.0,
    seed: int = 0,
    steps: int = 20,
    resolution: int | None = None,
    device: str | torch.device | None = None,
    frames: int | None = None,
    quantize: str = "none",
) -> list[list[Image.Image]]:
    """One list per prompt: [image] for image families, the clip's frames for video families.

    ``resolution`` is the square side in pixels (None = the family default), ``frames`` the clip
    length for video (None = the longest the family trains on); prompt i renders with seed+i.
    ``lora_path`` None renders the base model alone; a family with several denoisers (Wan 2.2
    A14B) takes a mapping of denoiser name to its file. ``quantize`` loads the base as the run
    trained it (its TrainingConfig.quantize), so try-it fits the same GPU class.
    """
    import torch

    from training.trainer import pick_device, precision_dtype, prepare_backends

    family = get_family(family_name)
    width = height = _side(family.spec, resolution)
    num_frames = _frames(family.spec, frames)
    if steps < 1:
        raise ConfigError("steps", "must be at least 1")
    loras = lora_files(family, lora_path)
    target = torch.device(device) if device is not None else pick_device()
    prepare_backends(target)
    model = family.load(
        base_model or family.spec.default_base_model,
        dtype=precision_dtype("auto", target),
        device=target,
        quantize=quantize,
    )
    # Encode first: freeing the encoders places (and quantises) the staged denoiser, and the
    # LoRA must wrap the placed layers.
    positive, negative = _encode(family, model, prompts)
    for denoiser, path in loras.items():
        family.load_lora(model, path, ADAPTER, denoiser)
    if loras:
        model.pipeline.set_adapters([ADAPTER], [float(strength)])
    rendered = []
    for index, embeds in enumerate(positive):
        request = SampleRequest(
            embeds=embeds,
            negative_embeds=negative,
            seed=seed + index,
            steps=steps,
            width=width,
            height=height,
            num_frames=num_frames,
        )
        rendered.append(family.sample(model, request))
    return rendered


def lora_files(
    family: Family, lora_path: str | Path | Mapping[str, str | Path] | None
) -> dict[str, Path]:
    """Denoiser name -> checked LoRA file ("" for a single file); empty without a LoRA."""
    if lora_path is None:
        return {}
    if isinstance(lora_path, Mapping):
        return {name: check_lora_file(family, Path(path)) for name, path in lora_path.items()}
    return {"": check_lora_file(family, Path(lora_path))}


def check_lora_file(family: Family, path: Path) -> Path:
    """The LoRA file must exist and, when it says so in its metadata, be for this family."""
    from training.lora_files import read_metadata

    if not path.is_file():
        raise ModelLoadError(f"LoRA file {str(path)!r} does not exist")
    try:
        trained_for = read_metadata(path).get("attune.family")
    except Exception as exc:  # safetensors raises its own error type for a bad header
        raise ModelLoadError(f"{path.name} is not a safetensors LoRA file: {exc}") from exc
    if trained_for and trained_for != family.spec.name:
        raise ModelLoadError(f"this LoRA was trained for {trained_for}, not {family.spec.name}")
    return path


def _encode(
    family: Family, model: LoadedModel, prompts: list[str]
) -> tuple[list[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """Per-prompt embeddings and the empty prompt's (the CFG negative), then free the encoders."""
    from training.cache import encode_prompt_table
    from training.models.base import release_memory

    table = encode_prompt_table(family, model, ["", *prompts])
    family.free_encoders(model)
    release_memory(model)
    return table[1:], table[0]


def _side(spec: FamilySpec, resolution: int | None) -> int:
    side = spec.default_resolution if resolution is None else int(resolution)
    side -= side % spec.size_multiple
    if not spec.size_multiple <= side <= spec.max_resolution:
        raise ConfigError(
            "resolution", f"must be between {spec.size_multiple} and {spec.max_resolution}"
        )
    return side


def _frames(spec: FamilySpec, frames: int | None) -> int:
    if not spec.is_video:
        return 1
    if frames is None:
        return max(spec.frame_counts)
    if frames not in spec.frame_counts:
        allowed = ", ".join(map(str, spec.frame_counts))
        raise ConfigError("frames", f"{spec.name} renders clips of {allowed} frames")
    return frames
