"""Checks both FLUX.2 families run on their tiny models (the test files say which family)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.support.training_data import write_image
from tests.training.killed_run import assert_image_run_resumes_exactly
from tests.training.lora_headers import assert_files_are_classifiable
from tests.training.tiny_assets_flow import (
    ALPHA,
    RANK,
    Exported,
    Trained,
    assert_files_reproduce,
    export_both,
    first_prompt_request,
    image_batch,
    load_cpu,
    peft_deltas,
    pixels,
    train_config,
    train_steps,
)
from training import train
from training.models.base import SampleRequest

if TYPE_CHECKING:
    from training.models.base import Family, LoadedModel

PROMPTS = ["a photo of sks dog", "a red painting of a cat in the style of ohwx"]
SIDE = 64  # pixels: 4x4 latent tokens on the tiny 8x VAE with 2x2 patches


def train_tiny(family: Family, folder: Path, steps: int = 3, lr: float = 2e-2) -> Trained:
    """Load, encode the prompts and two random images, free the encoders, run real steps."""
    model = load_cpu(family, folder)
    embeds = family.encode_prompts(model, PROMPTS)
    batch = image_batch(family, model, embeds, SIDE)
    negative = family.encode_prompts(model, [""])
    family.free_encoders(model)
    model.extras["negative"], model.extras["latents"] = negative, batch.latents
    return Trained(model, embeds, train_steps(family, model, batch, steps=steps, lr=lr))


def sample_request(trained: Trained) -> SampleRequest:
    """Two steps of the first prompt at the tiny size, CFG negative included."""
    return first_prompt_request(trained.embeds, trained.model.extras["negative"])


def check_latents_are_patchified_and_unit_scale(trained: Trained) -> None:
    """4 channels x 2x2 patches at 64 px / 16, roughly unit variance after the batch norm."""
    latents = trained.model.extras["latents"]
    assert latents.shape == (2, 16, 4, 4)
    assert 0.5 < float(latents.std()) < 2.0 and abs(float(latents.mean())) < 0.5


def check_losses_and_lora_moved(trained: Trained) -> None:
    """Finite losses, and every LoRA up matrix left zero-init."""
    assert len(trained.losses) == 3 and all(math.isfinite(x) for x in trained.losses)
    named = trained.model.pipeline.transformer.named_parameters()
    lora_b = [p for n, p in named if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)


def check_diffusers_keys(family: Family, trained: Trained, folder: Path) -> Exported:
    """The diffusers file: ``transformer.`` PEFT keys for both block types, alpha in metadata."""
    files = export_both(family, trained.model, folder)
    with safe_open(str(files.diffusers), framework="pt") as handle:
        keys = set(handle.keys())
        adapter = json.loads(handle.metadata()["lora_adapter_metadata"])
    for module in (
        "transformer_blocks.0.attn.to_q",
        "transformer_blocks.0.attn.add_v_proj",
        "transformer_blocks.0.attn.to_add_out",
        "transformer_blocks.0.ff.linear_in",
        "transformer_blocks.0.ff_context.linear_out",
        "single_transformer_blocks.0.attn.to_qkv_mlp_proj",
        "single_transformer_blocks.0.attn.to_out",
    ):
        assert f"transformer.{module}.lora_A.weight" in keys, module
    assert all(k.startswith("transformer.") and (".lora_A." in k or ".lora_B." in k) for k in keys)
    assert adapter["transformer.lora_alpha"] == ALPHA and adapter["transformer.r"] == RANK
    return files


def check_comfyui_file(files: Exported) -> None:
    """Original FLUX.2 names under diffusion_model., fused q/k/v, the same weight updates."""
    native = load_file(str(files.comfyui))
    assert all(k.startswith("diffusion_model.") for k in native)
    assert not any(k.endswith(".alpha") for k in native)  # folded into lora_B
    got = {
        key.removesuffix(".lora_A.weight"): native[key.replace("lora_A", "lora_B")] @ down
        for key, down in native.items()
        if key.endswith(".lora_A.weight")
    }
    double = ("img_attn.qkv", "img_attn.proj", "txt_attn.qkv", "txt_attn.proj")
    double += ("img_mlp.0", "img_mlp.2", "txt_mlp.0", "txt_mlp.2")
    assert set(got) == {f"diffusion_model.double_blocks.0.{n}" for n in double} | {
        "diffusion_model.single_blocks.0.linear1",
        "diffusion_model.single_blocks.0.linear2",
    }
    want = peft_deltas(files.state)
    fused = {
        "double_blocks.0.img_attn.qkv": [f"transformer_blocks.0.attn.to_{x}" for x in "qkv"],
        "double_blocks.0.txt_attn.qkv": [f"transformer_blocks.0.attn.add_{x}_proj" for x in "qkv"],
        "double_blocks.0.txt_mlp.2": ["transformer_blocks.0.ff_context.linear_out"],
        "single_blocks.0.linear1": ["single_transformer_blocks.0.attn.to_qkv_mlp_proj"],
    }
    for name, parts in fused.items():
        expected = torch.cat([want[p] for p in parts], dim=0)
        torch.testing.assert_close(got[f"diffusion_model.{name}"], expected, rtol=1e-5, atol=1e-6)


def check_files_load_and_change_the_image(family: Family, folder: Path, out: Path) -> None:
    """Both files load into a fresh pipeline on every module and reproduce the trained image."""
    trained = train_tiny(family, folder, steps=2, lr=5e-2)
    files = export_both(family, trained.model, out)
    request = sample_request(trained)

    def render(model: LoadedModel) -> np.ndarray:
        return pixels(family.sample(model, request))

    expected = family.lora_modules(trained.model, "default")
    assert len(expected) == 14  # 12 linears of the double block + 2 of the single block
    assert_files_reproduce(family, folder, files, expected, render, render(trained.model))


def image_data(folder: Path) -> Path:
    """Two small images with captions."""
    write_image(folder / "a.png", 256, 256, seed=1)
    write_image(folder / "b.png", 320, 256, seed=2)
    (folder / "b.txt").write_text("a red painting of [trigger]", encoding="utf-8")
    return folder


def check_train_end_to_end(family_name: str, folder: Path, tmp: Path) -> None:
    """train(): steps, both files written and verified in a fresh pipeline, a png sample."""
    config = train_config(family_name, folder)
    result = train(config, image_data(tmp / "data"), tmp / "out")
    assert result.steps_done == 2 and math.isfinite(result.final_loss or math.nan)
    assert Path(result.lora_path or "").is_file() and Path(result.comfyui_path or "").is_file()
    assert [Path(p).suffix for p in result.samples] == [".png"]
    assert_files_are_classifiable(result, family_name)


def check_killed_run_resumes(family_name: str, folder: Path, tmp: Path) -> None:
    """A run SIGKILLed after a checkpoint resumes there and ends bit-for-bit as an unbroken one."""
    result = assert_image_run_resumes_exactly(family_name, folder, tmp)
    assert math.isfinite(result.final_loss or math.nan)
