"""Helpers for the FLUX and Wan family tests: a few real LoRA steps, exports, image compares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from training.config import TrainingConfig
from training.lora_files import save_with_metadata
from training.models.base import LatentBatch, SampleRequest

if TYPE_CHECKING:
    from collections.abc import Callable

    from PIL import Image

    from training.models.base import Family, LoadedModel

CPU = torch.device("cpu")
RANK, ALPHA = 4, 8.0  # alpha != rank, so a file that loses alpha loads at the wrong strength


_SPELLINGS = ((".lora.down.weight", ".lora.up.weight"), (".lora_A.weight", ".lora_B.weight"))


@dataclass
class Trained:
    """A tiny model after a few LoRA steps, with the prompt embeddings it trained on."""

    model: LoadedModel
    embeds: dict[str, torch.Tensor]
    losses: list[float]


@dataclass
class Exported:
    """Both LoRA files of one adapter and the state dict they came from."""

    diffusers: Path
    comfyui: Path
    state: dict[str, torch.Tensor]


def load_cpu(family: Family, folder: Path, text_encoders: bool = True) -> LoadedModel:
    """The family's pipeline from a tiny hub-layout folder, fp32 on the CPU."""
    return family.load(str(folder), dtype=torch.float32, device=CPU, text_encoders=text_encoders)


def train_config(family: str, base_model: Path, **fields: object) -> TrainingConfig:
    """Two fast steps at the family's smallest resolution, one sample at the end."""
    values: dict[str, object] = {
        "family": family,
        "base_model": str(base_model),
        "steps": 2,
        "rank": RANK,
        "alpha": ALPHA,
        "learning_rate": 1e-2,
        "resolution": 256,
        "trigger_word": "sks",
        "caption_dropout": 0.0,
        "checkpoint_every": 0,
        "sample_every": 2,
        "sample_prompts": ("photo of {trigger}",),
        "sample_steps": 2,
        "mixed_precision": "fp32",
    }
    return TrainingConfig(**{**values, **fields})  # type: ignore[arg-type]


def image_batch(
    family: Family, model: LoadedModel, embeds: dict[str, torch.Tensor], side: int
) -> LatentBatch:
    """One seeded random side x side image per prompt in embeds, through the family's VAE."""
    count = next(iter(embeds.values())).shape[0]
    images = torch.rand(count, 3, side, side, generator=torch.Generator().manual_seed(0))
    latents = family.encode_media(model, images * 2 - 1)
    return LatentBatch(latents, embeds, ((side, side),) * count, ((0, 0),) * count)


def clip_batch(
    family: Family, model: LoadedModel, embeds: dict[str, torch.Tensor], frames: int, side: int
) -> LatentBatch:
    """One seeded random side x side clip of frames per prompt in embeds, through the VAE."""
    count = next(iter(embeds.values())).shape[0]
    generator = torch.Generator().manual_seed(frames)
    clips = torch.rand(count, 3, frames, side, side, generator=generator) * 2 - 1
    latents = family.encode_media(model, clips)
    return LatentBatch(latents, embeds, ((side, side),) * count, ((0, 0),) * count)


def first_prompt_clip(
    embeds: dict[str, torch.Tensor], negative: dict[str, torch.Tensor], frames: int, side: int
) -> SampleRequest:
    """A 2-step clip of the first prompt in embeds, seed 3, against the negative embeds."""
    one = {k: v[:1] for k, v in embeds.items()}
    return SampleRequest(one, negative, seed=3, steps=2, width=side, height=side, num_frames=frames)


def first_prompt_request(
    embeds: dict[str, torch.Tensor], negative: dict[str, torch.Tensor] | None = None
) -> SampleRequest:
    """A 2-step 64 px sample of the first prompt in embeds, seed 7."""
    one = {k: v[:1] for k, v in embeds.items()}
    return SampleRequest(embeds=one, negative_embeds=negative, seed=7, steps=2, width=64, height=64)


def assert_files_reproduce(
    family: Family,
    folder: Path,
    files: Exported,
    expected_modules: set[str],
    render: Callable[[LoadedModel], np.ndarray],
    trained_render: np.ndarray,
) -> None:
    """Each file loads into a fresh pipeline on every module and renders what training did."""
    for path in (files.diffusers, files.comfyui):
        fresh = load_cpu(family, folder, text_encoders=False)
        before = render(fresh)
        family.load_lora(fresh, path, "check")
        assert family.lora_modules(fresh, "check") == expected_modules, path.name
        after = render(fresh)
        assert abs(after - trained_render).max() <= 1, path.name
        assert abs(after - before).mean() > 0.5, path.name


def add_lora(family: Family, model: LoadedModel, seed: int = 0) -> list[torch.nn.Parameter]:
    """The adapter the trainer adds: the family's targets, gaussian init, fp32 params."""
    from peft import LoraConfig

    torch.manual_seed(seed)
    denoiser = family.denoiser(model)
    config = LoraConfig(
        r=RANK,
        lora_alpha=ALPHA,
        init_lora_weights="gaussian",
        target_modules=family.lora_target_modules(),
    )
    denoiser.add_adapter(config)
    denoiser.train()
    return [p for p in denoiser.parameters() if p.requires_grad]


def train_steps(
    family: Family, model: LoadedModel, batch: LatentBatch, steps: int, lr: float = 2e-2
) -> list[float]:
    """Real AdamW steps on one batch; returns the losses."""
    params = add_lora(family, model)
    optimizer = torch.optim.AdamW(params, lr=lr)
    generator = torch.Generator(CPU).manual_seed(0)
    losses = []
    for _ in range(steps):
        loss = family.training_loss(model, batch, generator)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def diffusers_state(family: Family, model: LoadedModel) -> dict[str, torch.Tensor]:
    """The state dict the trainer exports (convert_state_dict_to_diffusers of PEFT's)."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(family.denoiser(model)))
    return {k: v.detach().float().contiguous() for k, v in state.items()}


def export_both(family: Family, model: LoadedModel, folder: Path) -> Exported:
    """Write the diffusers file with save_lora and the kohya/ComfyUI file with to_kohya."""
    folder.mkdir(parents=True, exist_ok=True)
    state = diffusers_state(family, model)
    files = Exported(folder / "lora.safetensors", folder / "lora_comfyui.safetensors", state)
    family.save_lora(model, state, files.diffusers, {"attune.family": family.spec.name})
    save_with_metadata(family.to_kohya(state, ALPHA), files.comfyui, {"format": "pt"})
    return files


def peft_deltas(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Module -> up @ down * alpha / rank from a convert_state_dict_to_diffusers state dict.

    That function renames only attention projections to ``.lora.down/.lora.up``; feed-forward
    modules keep PEFT's ``lora_A/lora_B``, so both spellings occur in one dict.
    """
    deltas = {}
    for key, down in state.items():
        for down_suffix, up_suffix in _SPELLINGS:
            if key.endswith(down_suffix):
                module = key.removesuffix(down_suffix)
                deltas[module] = state[module + up_suffix] @ down * (ALPHA / RANK)
    return deltas


def kohya_deltas(kohya: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Module -> the update ComfyUI applies: up @ down * alpha / rank(down)."""
    deltas = {}
    for key, down in kohya.items():
        if key.endswith(".lora_down.weight"):
            module = key.removesuffix(".lora_down.weight")
            alpha = float(kohya[f"{module}.alpha"])
            deltas[module] = kohya[f"{module}.lora_up.weight"] @ down * (alpha / down.shape[0])
    return deltas


def pixels(images: list[Image.Image]) -> np.ndarray:
    """Frames as one int array, for comparing renders."""
    return np.stack([np.asarray(image, dtype=np.int16) for image in images])
