"""Z-Image Turbo on its tiny model: the training adapter, loss, LoRA keys, exports, resume."""

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
from training.config import TrainingConfig
from training.errors import ConfigError, ModelLoadError
from training.models import get_family
from training.models.base import LoadedModel
from training.models.training_adapter import AdapterSource, adapter_source
from training.models.z_image import ADAPTER_FILE

ZIMAGE = get_family("z-image")
PROMPTS = ["a photo of sks dog", "a red painting of a cat in the style of ohwx"]
ADAPTED = 4 * 7  # (2 layers + 1 noise refiner + 1 context refiner) x 7 linears


def load(folder: Path, text_encoders: bool = True, adapter: str | None = "") -> LoadedModel:
    """The tiny model; ``adapter`` not None = ready for training as the trainer does it."""
    model = load_cpu(ZIMAGE, folder, text_encoders)
    if adapter is not None:
        ZIMAGE.prepare_training(model, adapter)
    return model


@pytest.fixture(scope="module")
def folder(tiny_model: Callable[[str], Path]) -> Path:
    return tiny_model("z-image")


@pytest.fixture(scope="module")
def trained(folder: Path) -> Trained:
    model = load(folder)
    embeds = ZIMAGE.encode_prompts(model, PROMPTS)
    losses = train_steps(ZIMAGE, model, image_batch(ZIMAGE, model, embeds, 64), steps=3, lr=5e-2)
    return Trained(model, embeds, losses)


def test_tiny_model_is_a_z_image_pipeline_with_a_training_adapter(folder: Path) -> None:
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "ZImagePipeline"
    assert index["text_encoder"] == ["transformers", "Qwen3Model"]
    for part in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (folder / part).is_dir()
    assert (folder / "training_adapter" / ADAPTER_FILE).is_file()
    pipe = load(folder, adapter=None).pipeline
    assert pipe.scheduler.config.shift == 3.0 and not pipe.scheduler.config.use_dynamic_shifting
    assert pipe.tokenizer.chat_template  # the pipeline applies it to every prompt


def test_prompts_are_the_pipelines_own_embeddings_padded_to_one_length(trained: Trained) -> None:
    embeds, mask = trained.embeds["prompt_embeds"], trained.embeds["prompt_embeds_mask"]
    assert embeds.shape == (2, 512, 32) and mask.shape == (2, 512)
    own, _ = trained.model.pipeline.encode_prompt(
        prompt=list(PROMPTS), device=torch.device("cpu"), do_classifier_free_guidance=False
    )
    assert mask.sum(dim=1).tolist() == [len(tokens) for tokens in own]
    for row, tokens in enumerate(own):
        torch.testing.assert_close(embeds[row, : len(tokens)], tokens)


def test_latents_are_flux_style_shifted_and_scaled(trained: Trained) -> None:
    from training.models.tiny_parts import calibration_pixels

    latents = ZIMAGE.encode_media(trained.model, calibration_pixels())
    assert latents.shape == (4, 4, 8, 8)
    assert latents.mean().abs() < 0.2 and 0.7 < latents.std() < 1.3  # roughly unit variance


def test_the_training_adapter_is_merged_for_the_loss_and_left_out_of_samples(
    folder: Path,
) -> None:
    plain, adapted = load(folder, adapter=None), load(folder)
    adapter = load_file(str(folder / "training_adapter" / ADAPTER_FILE))
    name = "layers.1.feed_forward.w2"
    down = adapter[f"diffusion_model.{name}.lora_A.weight"]
    up = adapter[f"diffusion_model.{name}.lora_B.weight"]
    weight = adapted.pipeline.transformer.get_submodule(name).weight
    base = plain.pipeline.transformer.get_submodule(name).weight
    torch.testing.assert_close(weight, base + up @ down)  # alpha == rank in the tiny adapter
    embeds = ZIMAGE.encode_prompts(plain, PROMPTS)
    batch = image_batch(ZIMAGE, plain, embeds, 64)  # the VAE is the same in both
    losses = [
        ZIMAGE.training_loss(m, batch, torch.Generator().manual_seed(0)) for m in (plain, adapted)
    ]
    assert abs(losses[0].item() - losses[1].item()) > 1e-3  # training sees the adapter
    renders = [pixels(ZIMAGE.sample(m, first_prompt_request(embeds))) for m in (plain, adapted)]
    assert abs(renders[0] - renders[1]).max() <= 1  # samples show plain Turbo


def test_the_training_adapter_setting(folder: Path, tmp_path: Path) -> None:
    untouched = load(folder, adapter="none")
    assert "training_adapter" not in untouched.extras
    explicit = load(folder, adapter=str(folder / "training_adapter" / ADAPTER_FILE))
    assert len(explicit.extras["training_adapter"]) == ADAPTED
    published = adapter_source("", str(tmp_path), ZIMAGE.spec.training_adapter)
    assert published == AdapterSource("ostris/zimage_turbo_training_adapter", ADAPTER_FILE, False)
    with pytest.raises(ModelLoadError, match="does-not-exist"):
        load(folder, adapter=str(tmp_path / "does-not-exist.safetensors"))
    with pytest.raises(ConfigError, match="training_adapter"):
        TrainingConfig(family="sd15", training_adapter="ostris/some_adapter")


def test_training_steps_give_finite_loss_and_move_every_lora(trained: Trained) -> None:
    assert len(trained.losses) == 3 and all(math.isfinite(x) for x in trained.losses)
    lora_b = [p for n, p in trained.model.pipeline.transformer.named_parameters() if "lora_B" in n]
    assert len(lora_b) == ADAPTED
    assert all(p.abs().sum() > 0 for p in lora_b)  # B starts at zero


def test_diffusers_file_holds_only_the_trained_lora_under_diffusers_names(
    trained: Trained, tmp_path: Path
) -> None:
    files = export_both(ZIMAGE, trained.model, tmp_path)
    with safe_open(str(files.diffusers), framework="pt") as handle:
        keys = set(handle.keys())
        adapter = json.loads(handle.metadata()["lora_adapter_metadata"])
    for module in ("attention.to_q", "attention.to_out.0", "feed_forward.w1", "feed_forward.w3"):
        assert f"transformer.layers.1.{module}.lora_A.weight" in keys
    assert "transformer.context_refiner.0.attention.to_v.lora_B.weight" in keys
    assert len(keys) == 2 * ADAPTED and all(k.startswith("transformer.") for k in keys)
    assert adapter["transformer.lora_alpha"] == ALPHA and adapter["transformer.r"] == RANK


def test_comfyui_file_uses_the_original_names_with_qkv_fused(
    trained: Trained, tmp_path: Path
) -> None:
    files = export_both(ZIMAGE, trained.model, tmp_path)
    kohya = load_file(str(files.comfyui))
    assert all(k.startswith("diffusion_model.") for k in kohya)
    assert "diffusion_model.noise_refiner.0.attention.qkv.lora.down.weight" in kohya
    got, want = kohya_deltas_dot(kohya), peft_deltas(files.state)
    for block in ("layers.0", "noise_refiner.0", "context_refiner.0"):
        qkv = torch.cat([want[f"{block}.attention.to_{x}"] for x in "qkv"], dim=0)
        torch.testing.assert_close(got[f"diffusion_model.{block}.attention.qkv"], qkv)
        out = want[f"{block}.attention.to_out.0"]
        torch.testing.assert_close(got[f"diffusion_model.{block}.attention.out"], out)
        for ffn in ("w1", "w2", "w3"):
            name = f"{block}.feed_forward.{ffn}"
            torch.testing.assert_close(got[f"diffusion_model.{name}"], want[name])
    assert len(got) == 4 * 5  # qkv, out, w1, w2, w3 per block
    assert float(kohya["diffusion_model.layers.0.attention.qkv.alpha"]) == 3 * ALPHA


def kohya_deltas_dot(kohya: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """kohya_deltas for the ``.lora.down/.lora.up`` spelling."""
    renamed = {
        k.replace(".lora.down.", ".lora_down.").replace(".lora.up.", ".lora_up."): v
        for k, v in kohya.items()
    }
    return kohya_deltas(renamed)


def test_both_files_load_fully_into_plain_turbo_and_render_the_training_samples(
    trained: Trained, folder: Path, tmp_path: Path
) -> None:
    sample = first_prompt_request(trained.embeds)

    def render(pipeline: LoadedModel) -> np.ndarray:
        return pixels(ZIMAGE.sample(pipeline, sample))

    files = export_both(ZIMAGE, trained.model, tmp_path)
    expected = ZIMAGE.lora_modules(trained.model, "default")
    # Fresh pipelines have no adapter: the files alone reproduce what training sampled.
    assert_files_reproduce(ZIMAGE, folder, files, expected, render, render(trained.model))


def test_a_killed_run_resumes_bit_for_bit_and_exports_verified_files(
    folder: Path, tmp_path: Path
) -> None:
    result = assert_image_run_resumes_exactly("z-image", folder, tmp_path)
    assert math.isfinite(result.final_loss or math.nan)
    assert [Path(p).suffix for p in result.samples] == [".png"]
