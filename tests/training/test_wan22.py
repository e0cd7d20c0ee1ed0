"""Wan 2.2 TI2V 5B on its tiny random model: 16x VAE, loss, LoRA keys, both exports, resume."""

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

from catalogue.families import family_facts
from tests.support.training_data import write_clip_dataset
from tests.training.killed_run import assert_killed_run_resumes_exactly
from tests.training.lora_headers import assert_files_are_classifiable
from tests.training.tiny_assets_flow import (
    ALPHA,
    CPU,
    Trained,
    assert_files_reproduce,
    clip_batch,
    export_both,
    first_prompt_clip,
    kohya_deltas,
    load_cpu,
    peft_deltas,
    pixels,
    train_config,
    train_steps,
)
from training import train
from training.errors import ModelLoadError
from training.models import get_family
from training.models.base import LoadedModel
from training.models.tiny_parts import calibration_clip

WAN22 = get_family("wan22-ti2v-5b")
PROMPTS = ["a video of sks dog running", "a cat on a red chair"]
SIDE = 64  # 16x VAE and 2x2 patches: 2x2 tokens per latent frame


@pytest.fixture(scope="module")
def trained(tiny_model: Callable[[str], Path]) -> Trained:
    model = load_cpu(WAN22, tiny_model("wan22-ti2v-5b"))
    embeds = WAN22.encode_prompts(model, PROMPTS)
    losses = train_steps(
        WAN22, model, clip_batch(WAN22, model, embeds, frames=5, side=SIDE), steps=3
    )
    return Trained(model, embeds, losses)


@pytest.fixture(scope="module")
def negative(trained: Trained) -> dict[str, torch.Tensor]:
    return WAN22.encode_prompts(trained.model, [""])


def test_spec_is_24fps_up_to_121_frames_in_32px_buckets() -> None:
    spec = WAN22.spec
    assert spec.is_video and spec.fps == 24 and spec.size_multiple == 32
    assert spec.frame_counts == tuple(range(1, 122, 4)) and spec.flow_shift == 5.0
    assert spec.default_base_model == "Wan-AI/Wan2.2-TI2V-5B-Diffusers"


def test_tiny_model_is_a_ti2v_wan_pipeline_in_hub_layout(tiny_model: Callable[[str], Path]) -> None:
    folder = tiny_model("wan22-ti2v-5b")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "WanPipeline" and index["expand_timesteps"] is True
    vae = json.loads((folder / "vae" / "config.json").read_text())
    assert vae["is_residual"] and vae["patch_size"] == 2 and vae["scale_factor_spatial"] == 16
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["flow_shift"] == 5.0


def test_a_wan21_folder_is_refused(tiny_model: Callable[[str], Path]) -> None:
    with pytest.raises(ModelLoadError, match=r"not a Wan 2\.2 TI2V pipeline"):
        load_cpu(WAN22, tiny_model("wan21-t2v-1.3b"))


def test_vae_compresses_space_by_16_and_time_by_4_to_unit_scale_latents(trained: Trained) -> None:
    latents = WAN22.encode_media(trained.model, calibration_clip(13, 96))
    assert latents.shape == (1, 8, 4, 6, 6)
    assert abs(latents.mean().item()) < 0.3 and 0.6 < latents.std().item() < 1.5
    image = torch.zeros(1, 3, 64, 96)  # images train as 1-frame clips
    assert WAN22.encode_media(trained.model, image).shape == (1, 8, 1, 4, 6)


def test_one_timestep_per_clip_predicts_what_the_pipelines_per_token_timesteps_do(
    trained: Trained,
) -> None:
    batch = clip_batch(WAN22, trained.model, trained.embeds, frames=5, side=SIDE)
    transformer = trained.model.pipeline.transformer
    timesteps = torch.tensor([700.0, 120.0])
    tokens = batch.latents[0, 0].numel() // 4  # frames x (h/2) x (w/2)
    with torch.no_grad():
        per_clip = transformer(batch.latents, timesteps, batch.embeds["prompt_embeds"])[0]
        per_token = transformer(
            batch.latents, timesteps.view(2, 1).expand(2, tokens), batch.embeds["prompt_embeds"]
        )[0]
    torch.testing.assert_close(per_clip, per_token, rtol=1e-4, atol=1e-5)


def test_training_steps_give_finite_loss(trained: Trained) -> None:
    assert len(trained.losses) == 3 and all(math.isfinite(x) for x in trained.losses)


def test_diffusers_file_has_transformer_keys_and_comfyui_file_original_names(
    trained: Trained, tmp_path: Path
) -> None:
    files = export_both(WAN22, trained.model, tmp_path)
    with safe_open(str(files.diffusers), framework="pt") as handle:
        keys = set(handle.keys())
        adapter = json.loads(handle.metadata()["lora_adapter_metadata"])
    for module in ("attn1.to_q", "attn1.to_out.0", "attn2.to_v", "ffn.net.0.proj", "ffn.net.2"):
        assert f"transformer.blocks.1.{module}.lora_A.weight" in keys
    assert adapter["transformer.lora_alpha"] == ALPHA
    kohya = load_file(str(files.comfyui))
    got, want = kohya_deltas(kohya), peft_deltas(files.state)
    torch.testing.assert_close(
        got["diffusion_model.blocks.1.cross_attn.k"], want["blocks.1.attn2.to_k"]
    )
    torch.testing.assert_close(got["diffusion_model.blocks.0.ffn.2"], want["blocks.0.ffn.net.2"])
    assert len(got) == len(want) == 2 * 10  # 2 blocks x (4 self + 4 cross + 2 ffn)


def test_both_files_load_fully_into_a_fresh_pipeline_and_change_the_clip(
    trained: Trained, negative: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    sample = first_prompt_clip(trained.embeds, negative, frames=5, side=SIDE)

    def render(pipeline: LoadedModel) -> np.ndarray:
        return pixels(WAN22.sample(pipeline, sample))

    frames = WAN22.sample(trained.model, sample)
    assert len(frames) == 5 and frames[0].size == (SIDE, SIDE)
    files = export_both(WAN22, trained.model, tmp_path)
    expected = WAN22.lora_modules(trained.model, "default")
    folder = Path(trained.model.source)
    assert_files_reproduce(WAN22, folder, files, expected, render, render(trained.model))


def test_the_int8_base_the_preset_fills_in_quantises_the_transformer_not_the_lora(
    tiny_model: Callable[[str], Path],
) -> None:
    from training.quantize import quantized_linears

    assert family_facts("wan22-ti2v-5b").quantize == "int8"  # what its presets fill in
    model = WAN22.load(
        str(tiny_model("wan22-ti2v-5b")), dtype=torch.float32, device=CPU, quantize="int8"
    )
    embeds = WAN22.encode_prompts(model, PROMPTS)
    batch = clip_batch(WAN22, model, embeds, frames=5, side=SIDE)
    WAN22.free_encoders(model)  # places and quantises the staged transformer
    transformer = model.pipeline.transformer
    assert "blocks.0.ffn.net.2" in quantized_linears(transformer)
    losses = train_steps(WAN22, model, batch, steps=2)
    assert all(math.isfinite(loss) for loss in losses)
    trainable = [p for p in transformer.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)


def test_train_end_to_end_on_a_clip_and_an_image(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    data = write_clip_dataset(tmp_path / "data", fps=24, frames=7)
    config = train_config("wan22-ti2v-5b", tiny_model("wan22-ti2v-5b"))
    result = train(config, data, tmp_path / "out")
    assert result.steps_done == 2 and math.isfinite(result.final_loss or math.nan)
    assert set(result.lora_files) == {"lora", "comfyui"}
    assert all(Path(p).is_file() for p in result.lora_files.values())
    assert [Path(p).suffix for p in result.samples] == [".mp4", ".webp"]
    assert_files_are_classifiable(result, "wan22-ti2v-5b")


def test_a_killed_run_resumes_to_the_same_lora(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    data = write_clip_dataset(tmp_path / "data", fps=24, frames=7)
    config = train_config(
        "wan22-ti2v-5b",
        tiny_model("wan22-ti2v-5b"),
        steps=6,
        checkpoint_every=2,
        sample_every=0,
        caption_dropout=0.3,
    )
    assert_killed_run_resumes_exactly(config, data, tmp_path)
