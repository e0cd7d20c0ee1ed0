"""Wan 2.1 T2V family on its tiny random model: video latents, loss, LoRA keys, exports, clips."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from tests.support.training_data import write_image
from tests.training.lora_headers import assert_files_are_classifiable
from tests.training.tiny_assets_flow import (
    ALPHA,
    Trained,
    assert_files_reproduce,
    export_both,
    first_prompt_clip,
    kohya_deltas,
    load_cpu,
    peft_deltas,
    pixels,
    train_config,
    train_steps,
)
from tests.training.tiny_assets_flow import clip_batch as shared_clip_batch
from training import train
from training.models import get_family
from training.models.base import LatentBatch, LoadedModel, SampleRequest
from training.video import read_clip, write_mp4, write_webp

WAN = get_family("wan21-t2v-1.3b")
PROMPTS = ["a video of sks dog running", "a cat on a red chair"]


def load(folder: Path, text_encoders: bool = True) -> LoadedModel:
    return load_cpu(WAN, folder, text_encoders)


def clip_batch(model: LoadedModel, embeds: dict[str, torch.Tensor], frames: int) -> LatentBatch:
    return shared_clip_batch(WAN, model, embeds, frames, side=32)


def request(embeds: dict[str, torch.Tensor], negative: dict[str, torch.Tensor]) -> SampleRequest:
    return first_prompt_clip(embeds, negative, frames=5, side=32)


@pytest.fixture(scope="module")
def trained(tiny_model: Callable[[str], Path]) -> Trained:
    model = load(tiny_model("wan21-t2v-1.3b"))
    embeds = WAN.encode_prompts(model, PROMPTS)
    losses = train_steps(WAN, model, clip_batch(model, embeds, frames=5), steps=3)
    return Trained(model, embeds, losses)


@pytest.fixture(scope="module")
def negative(trained: Trained) -> dict[str, torch.Tensor]:
    return WAN.encode_prompts(trained.model, [""])


def test_spec_is_16fps_with_4k_plus_1_frame_buckets() -> None:
    assert WAN.spec.is_video and WAN.spec.fps == 16
    assert WAN.spec.frame_counts == tuple(range(1, 82, 4))
    assert WAN.spec.flow_shift == 3.0


def test_tiny_model_is_a_wan_pipeline_in_hub_layout(tiny_model: Callable[[str], Path]) -> None:
    folder = tiny_model("wan21-t2v-1.3b")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "WanPipeline"
    for part in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (folder / part).is_dir()
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["flow_shift"] == 3.0


def test_vae_compresses_time_by_4_and_space_by_8(trained: Trained) -> None:
    clip = torch.zeros(1, 3, 9, 32, 48)
    assert WAN.encode_media(trained.model, clip).shape == (1, 4, 3, 4, 6)
    image = torch.zeros(1, 3, 32, 48)  # images train as 1-frame clips
    assert WAN.encode_media(trained.model, image).shape == (1, 4, 1, 4, 6)


def test_training_steps_on_clips_and_images_give_finite_loss(trained: Trained) -> None:
    assert len(trained.losses) == 3 and all(math.isfinite(x) for x in trained.losses)
    image_batch = clip_batch(trained.model, trained.embeds, frames=1)
    loss = WAN.training_loss(trained.model, image_batch, torch.Generator().manual_seed(1))
    assert loss.ndim == 0 and math.isfinite(loss.item())


def test_diffusers_file_has_transformer_peft_keys_and_alpha(
    trained: Trained, tmp_path: Path
) -> None:
    files = export_both(WAN, trained.model, tmp_path)
    with safe_open(str(files.diffusers), framework="pt") as handle:
        keys = set(handle.keys())
        adapter = json.loads(handle.metadata()["lora_adapter_metadata"])
    for module in ("attn1.to_q", "attn1.to_out.0", "attn2.to_v", "ffn.net.0.proj", "ffn.net.2"):
        assert f"transformer.blocks.1.{module}.lora_A.weight" in keys
    assert all(k.startswith("transformer.blocks.") for k in keys)
    assert adapter["transformer.lora_alpha"] == ALPHA


def test_comfyui_file_uses_original_wan_names_with_the_same_update(
    trained: Trained, tmp_path: Path
) -> None:
    files = export_both(WAN, trained.model, tmp_path)
    kohya = load_file(str(files.comfyui))
    got, want = kohya_deltas(kohya), peft_deltas(files.state)
    names = {
        "self_attn.q": "attn1.to_q",
        "self_attn.o": "attn1.to_out.0",
        "cross_attn.k": "attn2.to_k",
        "ffn.0": "ffn.net.0.proj",
        "ffn.2": "ffn.net.2",
    }
    for original, diffusers_name in names.items():
        delta = got[f"diffusion_model.blocks.0.{original}"]
        torch.testing.assert_close(delta, want[f"blocks.0.{diffusers_name}"])
    assert len(got) == len(want) == 2 * 10  # 2 blocks x (4 self + 4 cross + 2 ffn)
    assert float(kohya["diffusion_model.blocks.0.self_attn.q.alpha"]) == ALPHA


def test_sample_returns_the_requested_frames_and_writes_playable_previews(
    trained: Trained, negative: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    frames = WAN.sample(trained.model, request(trained.embeds, negative))
    assert len(frames) == 5 and frames[0].size == (32, 32)
    assert trained.model.pipeline.transformer.training  # mode restored after sampling
    mp4 = write_mp4(frames, tmp_path / "s.mp4", WAN.spec.fps)
    with av.open(str(mp4)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 5
    with Image.open(write_webp(frames, tmp_path / "s.webp", WAN.spec.fps)) as webp:
        assert webp.n_frames == 5


def test_both_files_load_fully_into_a_fresh_pipeline_and_change_the_clip(
    trained: Trained, negative: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    sample = request(trained.embeds, negative)

    def render(pipeline: LoadedModel) -> np.ndarray:
        return pixels(WAN.sample(pipeline, sample))

    files = export_both(WAN, trained.model, tmp_path)
    expected = WAN.lora_modules(trained.model, "default")
    assert len(expected) == 20  # 2 blocks x (4 self + 4 cross + 2 ffn)
    folder = Path(trained.model.source)
    assert_files_reproduce(WAN, folder, files, expected, render, render(trained.model))


def test_train_end_to_end_on_a_clip_and_an_image(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    frames = [Image.new("RGB", (256, 256), (30 * i, 80, 200 - 30 * i)) for i in range(7)]
    write_mp4(frames, data / "clip.mp4", fps=16)  # 7 frames at 16 fps -> a 5-frame bucket
    (data / "clip.txt").write_text("a video of [trigger] dog", encoding="utf-8")
    write_image(data / "still.png", 256, 256, seed=3)
    assert len(read_clip(data / "clip.mp4", 16, WAN.spec.frame_counts, 256).frames) == 5
    config = train_config("wan21-t2v-1.3b", tiny_model("wan21-t2v-1.3b"))
    result = train(config, data, tmp_path / "out")
    assert result.steps_done == 2 and math.isfinite(result.final_loss or math.nan)
    assert Path(result.lora_path or "").is_file() and Path(result.comfyui_path or "").is_file()
    assert_files_are_classifiable(result, "wan21-t2v-1.3b")
    sample = next(Path(p) for p in result.samples if p.endswith(".mp4"))
    with av.open(str(sample)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 5
    preview = sample.with_suffix(".webp")  # the animated preview the run page can show
    assert str(preview) in result.samples
    with Image.open(preview) as image:
        assert image.n_frames == 5
