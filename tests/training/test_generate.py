"""training.generate: a LoRA rendered at a chosen strength, images or clips, as "try it" uses it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import training
from tests.training.tiny_assets_flow import add_lora, export_both, load_cpu, pixels
from training.errors import ConfigError, ModelLoadError
from training.models import get_family


def _lora_file(family_name: str, folder: Path, out: Path) -> Path:
    """A LoRA for the tiny model with non-zero up weights, saved as the trainer saves it."""
    family = get_family(family_name)
    model = load_cpu(family, folder, text_encoders=False)
    generator = torch.Generator().manual_seed(1)
    add_lora(family, model)
    with torch.no_grad():
        for name, param in family.denoiser(model).named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    return export_both(family, model, out).diffusers


def _render(family: str, folder: Path, lora: Path | None, **options: object) -> np.ndarray:
    [frames] = training.generate(
        family, str(folder), lora, ["photo of sks dog"], seed=3, steps=2, device="cpu", **options
    )
    return pixels(frames)


def test_strength_zero_renders_the_base_model_and_strength_one_the_lora(
    tmp_path: Path, tiny_model: Callable[[str], Path]
) -> None:
    folder = tiny_model("tiny-sd")
    lora = _lora_file("tiny-sd", folder, tmp_path)
    base = _render("tiny-sd", folder, None, resolution=64)
    assert base.shape == (1, 64, 64, 3)
    assert np.array_equal(_render("tiny-sd", folder, lora, resolution=64, strength=0.0), base)
    full = _render("tiny-sd", folder, lora, resolution=64, strength=1.0)
    assert np.abs(full - base).mean() > 0.5


def test_two_prompts_give_one_image_each_at_the_family_default_size(
    tiny_model: Callable[[str], Path],
) -> None:
    out = training.generate(
        "tiny-sd", str(tiny_model("tiny-sd")), None, ["a dog", "a cat"], steps=1, device="cpu"
    )
    assert [len(images) for images in out] == [1, 1]
    assert out[0][0].size == (64, 64)  # tiny-sd's default resolution


def test_video_family_renders_a_clip_of_an_allowed_length_with_the_lora(
    tmp_path: Path, tiny_model: Callable[[str], Path]
) -> None:
    family = "wan21-t2v-1.3b"
    folder = tiny_model(family)
    lora = _lora_file(family, folder, tmp_path)
    clip = _render(family, folder, lora, resolution=32)
    spec = get_family(family).spec
    assert clip.shape[0] in spec.frame_counts and clip.shape[0] == max(spec.frame_counts)
    assert clip.shape[1:] == (32, 32, 3)
    base = _render(family, folder, None, resolution=32)
    assert np.abs(clip - base).mean() > 0.5  # the LoRA changed the clip
    assert _render(family, folder, None, resolution=32, frames=5).shape[0] == 5


def test_bad_requests_raise_training_errors(
    tmp_path: Path, tiny_model: Callable[[str], Path]
) -> None:
    folder = str(tiny_model("tiny-sd"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        training.generate("tiny-sd", folder, tmp_path / "missing.safetensors", ["x"], steps=1)
    sd_lora = _lora_file("tiny-sd", tiny_model("tiny-sd"), tmp_path)
    with pytest.raises(ModelLoadError, match="trained for tiny-sd"):
        training.generate("wan21-t2v-1.3b", folder, sd_lora, ["x"], steps=1)
    with pytest.raises(ConfigError, match="resolution"):
        training.generate("tiny-sd", folder, None, ["x"], resolution=8)
    with pytest.raises(ConfigError, match="frames"):
        training.generate("wan21-t2v-1.3b", folder, None, ["x"], frames=4)
