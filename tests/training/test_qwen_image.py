"""Qwen-Image on its tiny random model: prompts, latents, loss, LoRA keys, exports, resume."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.training.killed_run import assert_image_run_resumes_exactly
from tests.training.tiny_assets_flow import (
    ALPHA,
    RANK,
    Trained,
    assert_files_reproduce,
    export_both,
    first_prompt_request,
    image_batch,
    kohya_deltas,
    load_cpu,
    peft_deltas,
    pixels,
    train_steps,
)
from training.models import get_family
from training.models.base import LoadedModel
from training.models.tiny_parts import calibration_pixels

QWEN = get_family("qwen-image")
PROMPTS = ["a photo of sks dog", "a red painting of a cat in the style of ohwx"]


def load(folder: Path, text_encoders: bool = True) -> LoadedModel:
    return load_cpu(QWEN, folder, text_encoders)


@pytest.fixture(scope="module")
def trained(tiny_model: Callable[[str], Path]) -> Trained:
    model = load(tiny_model("qwen-image"))
    embeds = QWEN.encode_prompts(model, PROMPTS)
    losses = train_steps(QWEN, model, image_batch(QWEN, model, embeds, 64), steps=3, lr=5e-2)
    return Trained(model, embeds, losses)


def test_tiny_model_is_a_qwen_image_pipeline_with_the_real_prompt_template(
    tiny_model: Callable[[str], Path],
) -> None:
    folder = tiny_model("qwen-image")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "QwenImagePipeline"
    assert index["text_encoder"] == ["transformers", "Qwen2_5_VLForConditionalGeneration"]
    for part in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (folder / part).is_dir()
    pipe = load(folder).pipeline
    # The pipeline drops a fixed number of template tokens: the toy tokenizer must agree.
    system = pipe.prompt_template_encode.split("{}")[0]
    assert len(pipe.tokenizer(system).input_ids) == pipe.prompt_template_encode_start_idx == 34
    assert pipe.scheduler.config.use_dynamic_shifting and pipe.scheduler.config.max_shift == 0.9
    assert not any(p.requires_grad for p in pipe.transformer.parameters())


def test_prompts_are_the_pipelines_own_embeddings_padded_to_one_length(trained: Trained) -> None:
    embeds, mask = trained.embeds["prompt_embeds"], trained.embeds["prompt_embeds_mask"]
    assert embeds.shape == (2, 512, 32) and mask.shape == (2, 512)
    own, own_mask = trained.model.pipeline.encode_prompt(prompt=PROMPTS, device=torch.device("cpu"))
    lengths = own_mask.sum(dim=1).tolist()
    assert mask.sum(dim=1).tolist() == lengths and lengths[0] != lengths[1]
    for row, length in enumerate(lengths):
        torch.testing.assert_close(embeds[row, :length], own[row, :length])
        assert not embeds[row, length:].any()


def test_latents_are_normalised_per_channel_as_the_pipeline_undoes_it(trained: Trained) -> None:
    vae = trained.model.pipeline.vae
    latents = QWEN.encode_media(trained.model, calibration_pixels())
    assert latents.shape == (4, 4, 8, 8)
    assert latents.mean().abs() < 0.2 and 0.7 < latents.std() < 1.3  # roughly unit variance
    raw = vae.encode(calibration_pixels().unsqueeze(2)).latent_dist.mode()[:, :, 0]
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1)
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1)
    torch.testing.assert_close(latents * std + mean, raw, rtol=1e-4, atol=1e-5)


def test_training_steps_give_finite_loss_and_move_the_lora(trained: Trained) -> None:
    assert len(trained.losses) == 3 and all(math.isfinite(x) for x in trained.losses)
    lora_b = {
        n.removesuffix(".lora_B.default.weight"): p
        for n, p in trained.model.pipeline.transformer.named_parameters()
        if "lora_B" in n
    }
    assert len(lora_b) == 2 * len(QWEN.lora_target_modules())  # 2 blocks
    still_zero = {name for name, p in lora_b.items() if not p.abs().sum() > 0}  # B starts at 0
    # Only the image stream leaves the last block, so its text-only outputs get no gradient.
    last = "transformer_blocks.1."
    dead = ("attn.add_q_proj", "attn.to_add_out", "txt_mlp.net.0.proj", "txt_mlp.net.2")
    assert still_zero == {last + module for module in dead}


def test_diffusers_file_has_transformer_peft_keys_and_alpha(
    trained: Trained, tmp_path: Path
) -> None:
    files = export_both(QWEN, trained.model, tmp_path)
    with safe_open(str(files.diffusers), framework="pt") as handle:
        keys = set(handle.keys())
        adapter = json.loads(handle.metadata()["lora_adapter_metadata"])
    for module in ("attn.to_q", "attn.add_k_proj", "attn.to_add_out", "img_mlp.net.2"):
        assert f"transformer.transformer_blocks.1.{module}.lora_A.weight" in keys
    assert "transformer.transformer_blocks.0.txt_mlp.net.0.proj.lora_B.weight" in keys
    assert all(k.startswith("transformer.transformer_blocks.") for k in keys)
    assert adapter["transformer.lora_alpha"] == ALPHA and adapter["transformer.r"] == RANK


def test_comfyui_file_uses_the_native_names_with_the_same_update(
    trained: Trained, tmp_path: Path
) -> None:
    files = export_both(QWEN, trained.model, tmp_path)
    kohya = load_file(str(files.comfyui))
    got, want = kohya_deltas(kohya), peft_deltas(files.state)
    assert set(got) == {f"diffusion_model.{module}" for module in want}
    for module, delta in want.items():
        torch.testing.assert_close(got[f"diffusion_model.{module}"], delta)
    assert float(kohya["diffusion_model.transformer_blocks.0.attn.to_q.alpha"]) == ALPHA


def test_both_files_load_fully_into_a_fresh_pipeline_and_change_the_image(
    trained: Trained, tmp_path: Path
) -> None:
    sample = first_prompt_request(trained.embeds, QWEN.encode_prompts(trained.model, [""]))

    def render(pipeline: LoadedModel) -> np.ndarray:
        return pixels(QWEN.sample(pipeline, sample))

    files = export_both(QWEN, trained.model, tmp_path)
    expected = QWEN.lora_modules(trained.model, "default")
    assert len(expected) == 2 * 12
    folder = Path(trained.model.source)
    assert_files_reproduce(QWEN, folder, files, expected, render, render(trained.model))
    assert trained.model.pipeline.transformer.training  # sampling restored the train mode


def test_a_killed_run_resumes_bit_for_bit_and_exports_verified_files(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    result = assert_image_run_resumes_exactly("qwen-image", tiny_model("qwen-image"), tmp_path)
    assert math.isfinite(result.final_loss or math.nan)
    assert [Path(p).suffix for p in result.samples] == [".png"]
