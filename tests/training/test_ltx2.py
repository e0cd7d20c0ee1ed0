"""LTX-2 on its tiny random model: Gemma prompts through the connectors, 32x/8x VAE, video LoRA."""

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

from tests.support.training_data import write_clip_dataset
from tests.training.killed_run import assert_killed_run_resumes_exactly
from tests.training.lora_headers import assert_files_are_classifiable
from tests.training.tiny_assets_flow import (
    ALPHA,
    Trained,
    assert_files_reproduce,
    clip_batch,
    export_both,
    first_prompt_clip,
    load_cpu,
    peft_deltas,
    pixels,
    train_config,
    train_steps,
)
from training import train
from training.models import get_family
from training.models.base import LoadedModel
from training.models.tiny_parts import calibration_clip

LTX2 = get_family("ltx2")
PROMPTS = ["a video of sks dog running", "a cat on a red chair"]
SIDE = 64


@pytest.fixture(scope="module")
def trained(tiny_model: Callable[[str], Path]) -> Trained:
    model = load_cpu(LTX2, tiny_model("ltx2"))
    embeds = LTX2.encode_prompts(model, PROMPTS)
    losses = train_steps(LTX2, model, clip_batch(LTX2, model, embeds, frames=9, side=SIDE), steps=3)
    return Trained(model, embeds, losses)


@pytest.fixture(scope="module")
def negative(trained: Trained) -> dict[str, torch.Tensor]:
    return LTX2.encode_prompts(trained.model, [""])


def test_spec_is_24fps_with_8k_plus_1_frames_in_32px_buckets() -> None:
    spec = LTX2.spec
    assert spec.is_video and spec.fps == 24 and spec.size_multiple == 32
    assert spec.frame_counts == tuple(range(1, 122, 8))
    assert spec.default_base_model == "Lightricks/LTX-2"


def test_tiny_model_is_an_ltx2_pipeline_with_every_component(
    tiny_model: Callable[[str], Path],
) -> None:
    folder = tiny_model("ltx2")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "LTX2Pipeline"
    for part in ("transformer", "vae", "audio_vae", "vocoder", "text_encoder", "connectors"):
        assert index[part][0] is not None and (folder / part).is_dir()
    assert index["tokenizer"] == ["transformers", "GemmaTokenizer"]
    assert (folder / "tokenizer" / "tokenizer.json").is_file()


def test_prompts_are_gemma_tokens_through_the_connectors(trained: Trained) -> None:
    ids = trained.model.pipeline.tokenizer("a photo of sks dog").input_ids
    assert ids[0] == 2 and 3 not in ids  # <bos> first, no <unk>: the toy BPE covers the words
    embeds = trained.embeds
    assert embeds["prompt_embeds"].shape == (2, 64, 16)  # connector output, padded to 64 tokens
    assert embeds["audio_prompt_embeds"].shape == (2, 64, 16)
    assert not torch.equal(embeds["prompt_embeds"][0], embeds["prompt_embeds"][1])


def test_vae_compresses_space_by_32_and_time_by_8_to_unit_scale_latents(trained: Trained) -> None:
    latents = LTX2.encode_media(trained.model, calibration_clip(25, 96))
    assert latents.shape == (1, 8, 4, 3, 3)
    assert abs(latents.mean().item()) < 0.3 and 0.6 < latents.std().item() < 1.5
    assert LTX2.encode_media(trained.model, torch.zeros(1, 3, 64, 96)).shape == (1, 8, 1, 2, 3)


def test_training_steps_give_finite_loss(trained: Trained) -> None:
    assert len(trained.losses) == 3 and all(math.isfinite(x) for x in trained.losses)


def test_the_video_prediction_does_not_depend_on_the_audio_stream(trained: Trained) -> None:
    transformer = trained.model.pipeline.transformer
    batch = clip_batch(LTX2, trained.model, trained.embeds, frames=9, side=SIDE)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        first = LTX2.training_loss(trained.model, batch, generator.manual_seed(5))
        transformer.audio_proj_in.bias.add_(1.0)  # a different audio stream entirely
        try:
            second = LTX2.training_loss(trained.model, batch, generator.manual_seed(5))
        finally:
            transformer.audio_proj_in.bias.sub_(1.0)
    torch.testing.assert_close(first, second)


def test_lora_covers_only_the_video_branch_and_files_have_the_right_names(
    trained: Trained, tmp_path: Path
) -> None:
    modules = LTX2.lora_modules(trained.model, "default")
    assert len(modules) == 2 * 10  # 2 blocks x (4 self + 4 text-cross + 2 ff)
    assert not any("audio" in name for name in modules)
    files = export_both(LTX2, trained.model, tmp_path)
    with safe_open(str(files.diffusers), framework="pt") as handle:
        keys = set(handle.keys())
        adapter = json.loads(handle.metadata()["lora_adapter_metadata"])
    assert "transformer.transformer_blocks.1.attn2.to_k.lora_A.weight" in keys
    assert "transformer.transformer_blocks.0.ff.net.2.lora_B.weight" in keys
    assert adapter["transformer.lora_alpha"] == ALPHA
    kohya = load_file(str(files.comfyui))
    assert all(k.startswith("diffusion_model.transformer_blocks.") for k in kohya)
    assert not any(k.endswith(".alpha") for k in kohya)  # folded into lora_B instead
    module = "diffusion_model.transformer_blocks.1.attn1.to_q"
    got = kohya[f"{module}.lora_B.weight"] @ kohya[f"{module}.lora_A.weight"]  # ComfyUI: scale 1
    want = peft_deltas(files.state)["transformer_blocks.1.attn1.to_q"]
    torch.testing.assert_close(got, want)


def test_both_files_load_fully_into_a_fresh_pipeline_and_change_the_clip(
    trained: Trained, negative: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    sample = first_prompt_clip(trained.embeds, negative, frames=9, side=SIDE)

    def render(pipeline: LoadedModel) -> np.ndarray:
        return pixels(LTX2.sample(pipeline, sample))

    frames = LTX2.sample(trained.model, sample)
    assert len(frames) == 9 and frames[0].size == (SIDE, SIDE)
    assert trained.model.pipeline.transformer.training  # mode restored after sampling
    files = export_both(LTX2, trained.model, tmp_path)
    expected = LTX2.lora_modules(trained.model, "default")
    folder = Path(trained.model.source)
    assert_files_reproduce(LTX2, folder, files, expected, render, render(trained.model))


def test_train_end_to_end_on_a_clip_and_an_image(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    config = train_config("ltx2", tiny_model("ltx2"))
    result = train(
        config, write_clip_dataset(tmp_path / "data", fps=24, frames=11), tmp_path / "out"
    )
    assert result.steps_done == 2 and math.isfinite(result.final_loss or math.nan)
    assert set(result.lora_files) == {"lora", "comfyui"}
    assert [Path(p).suffix for p in result.samples] == [".mp4", ".webp"]
    assert_files_are_classifiable(result, "ltx2")


def test_a_killed_run_resumes_to_the_same_lora(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    config = train_config(
        "ltx2", tiny_model("ltx2"), steps=6, checkpoint_every=2, sample_every=0, caption_dropout=0.3
    )
    assert_killed_run_resumes_exactly(
        config, write_clip_dataset(tmp_path / "data", fps=24, frames=11), tmp_path
    )
