"""FLUX.1-dev family on its tiny random model: loading, loss, LoRA keys, both export layouts."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import FluxPipeline
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tests.support.training_data import write_image
from tests.training.lora_headers import assert_files_are_classifiable
from tests.training.tiny_assets_flow import (
    ALPHA,
    RANK,
    Trained,
    add_lora,
    assert_files_reproduce,
    export_both,
    first_prompt_request,
    image_batch,
    kohya_deltas,
    load_cpu,
    peft_deltas,
    pixels,
    train_config,
    train_steps,
)
from training import train
from training.errors import ExportError, ModelLoadError
from training.lora_files import read_metadata
from training.models import get_family
from training.models.base import LoadedModel

FLUX = get_family("flux-dev")
PROMPTS = ["a photo of sks dog", "a red painting of a cat in the style of ohwx"]


def load(folder: Path, text_encoders: bool = True) -> LoadedModel:
    return load_cpu(FLUX, folder, text_encoders)


@pytest.fixture(scope="module")
def with_single_blocks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with a single-stream block too (the default has none, see make_tiny)."""
    return FLUX.make_tiny(tmp_path_factory.mktemp("flux-single"), single_blocks=1)


@pytest.fixture(scope="module")
def trained(with_single_blocks: Path) -> Trained:
    model = load(with_single_blocks)
    embeds = FLUX.encode_prompts(model, PROMPTS)
    losses = train_steps(FLUX, model, image_batch(FLUX, model, embeds, 64), steps=3)
    return Trained(model, embeds, losses)


def test_tiny_model_is_a_flux_pipeline_in_hub_layout(tiny_model: Callable[[str], Path]) -> None:
    folder = tiny_model("flux-dev")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "FluxPipeline"
    for part in ("transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer_2"):
        assert (folder / part).is_dir()
    model = load(folder)
    assert model.pipeline.transformer.config.guidance_embeds
    assert model.pipeline.vae.config.shift_factor != 0
    assert not any(p.requires_grad for p in model.pipeline.transformer.parameters())


def test_load_refuses_another_familys_folder(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    with pytest.raises(ModelLoadError, match="WanPipeline"):
        load(tmp_path)


def test_prompt_embeddings_have_one_shape_for_every_prompt(trained: Trained) -> None:
    embeds = trained.embeds
    assert embeds["prompt_embeds"].shape[:2] == (2, 32)  # padded to the tokenizer's length
    assert embeds["pooled_prompt_embeds"].shape == (2, 32)


def test_training_steps_give_finite_loss_and_move_the_lora(trained: Trained) -> None:
    assert len(trained.losses) == 3 and all(math.isfinite(x) for x in trained.losses)
    lora_b = [p for n, p in trained.model.pipeline.transformer.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # B starts at zero


def test_lora_wraps_attention_and_mlp_of_both_block_types(trained: Trained) -> None:
    modules = FLUX.lora_modules(trained.model, "default")
    for name in (
        "transformer_blocks.0.attn.to_q",
        "transformer_blocks.0.attn.add_v_proj",
        "transformer_blocks.0.attn.to_add_out",
        "transformer_blocks.0.ff_context.net.2",
        "single_transformer_blocks.0.attn.to_k",
        "single_transformer_blocks.0.proj_mlp",
    ):
        assert name in modules


def test_diffusers_file_has_transformer_peft_keys_alpha_and_metadata(
    trained: Trained, tmp_path: Path
) -> None:
    files = export_both(FLUX, trained.model, tmp_path)
    with safe_open(str(files.diffusers), framework="pt") as handle:
        keys = set(handle.keys())
    assert "transformer.transformer_blocks.0.attn.to_q.lora_A.weight" in keys
    assert "transformer.single_transformer_blocks.0.proj_mlp.lora_B.weight" in keys
    assert all(k.startswith("transformer.") and (".lora_A." in k or ".lora_B." in k) for k in keys)
    meta = read_metadata(files.diffusers)
    assert meta["attune.family"] == "flux-dev"
    adapter = json.loads(meta["lora_adapter_metadata"])
    assert adapter["transformer.lora_alpha"] == ALPHA and adapter["transformer.r"] == RANK


def test_kohya_file_uses_bfl_names_and_applies_the_same_update(
    trained: Trained, tmp_path: Path
) -> None:
    files = export_both(FLUX, trained.model, tmp_path)
    kohya = load_file(str(files.comfyui))
    got = kohya_deltas(kohya)
    double = [
        f"{s}_{n}" for s in ("img", "txt") for n in ("attn_qkv", "attn_proj", "mlp_0", "mlp_2")
    ]
    assert set(got) == {f"lora_unet_double_blocks_0_{name}" for name in double} | {
        "lora_unet_single_blocks_0_linear1"
    }
    want = peft_deltas(files.state)
    fused = {
        "lora_unet_double_blocks_0_img_attn_qkv": [
            f"transformer_blocks.0.attn.to_{x}" for x in "qkv"
        ],
        "lora_unet_single_blocks_0_linear1": [
            *(f"single_transformer_blocks.0.attn.to_{x}" for x in "qkv"),
            "single_transformer_blocks.0.proj_mlp",
        ],
        "lora_unet_double_blocks_0_img_mlp_2": ["transformer_blocks.0.ff.net.2"],
    }
    # ComfyUI adds up @ down * alpha / rank to the fused BFL weight: q, k, v (, mlp) stacked.
    for name, parts in fused.items():
        expected = torch.cat([want[p] for p in parts], dim=0)
        torch.testing.assert_close(got[name], expected, rtol=1e-5, atol=1e-6)


def test_diffusers_splits_single_block_linear1_back_at_flux_dev_widths() -> None:
    # diffusers' converter hard-codes FLUX.1's 3072/12288 widths; check them at full size.
    generator = torch.Generator().manual_seed(0)
    state = {}
    widths = {"attn.to_q": 3072, "attn.to_k": 3072, "attn.to_v": 3072, "proj_mlp": 12288}
    for name, out in widths.items():
        prefix = f"single_transformer_blocks.3.{name}"
        state[f"{prefix}.lora.down.weight"] = torch.randn(2, 3072, generator=generator)
        state[f"{prefix}.lora.up.weight"] = torch.randn(out, 2, generator=generator)
    converted = FluxPipeline.lora_state_dict(FLUX.to_kohya(state, 2.0))
    assert len(converted) == 8
    for key, down in state.items():
        if key.endswith("down.weight"):
            module = key.removesuffix(".lora.down.weight")
            up = state[f"{module}.lora.up.weight"]
            a = converted[f"transformer.{module}.lora_A.weight"]
            b = converted[f"transformer.{module}.lora_B.weight"]
            torch.testing.assert_close(b @ a, up @ down, rtol=1e-4, atol=1e-4)


def test_both_files_load_fully_into_a_fresh_pipeline_and_change_the_image(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    folder = tiny_model("flux-dev")
    model = load(folder)
    embeds = FLUX.encode_prompts(model, PROMPTS)
    train_steps(FLUX, model, image_batch(FLUX, model, embeds, 64), steps=2, lr=5e-2)
    files = export_both(FLUX, model, tmp_path)

    def render(pipeline: LoadedModel) -> np.ndarray:
        return pixels(FLUX.sample(pipeline, first_prompt_request(embeds)))

    expected = FLUX.lora_modules(model, "default")
    assert_files_reproduce(FLUX, folder, files, expected, render, render(model))


def test_loading_reports_tensors_that_found_no_module(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    model = load(tiny_model("flux-dev"), text_encoders=False)
    add_lora(FLUX, model)
    files = export_both(FLUX, model, tmp_path)
    tensors = load_file(str(files.diffusers))
    tensors["unet.mid_block.to_q.lora_A.weight"] = torch.zeros(RANK, 8)
    stray = tmp_path / "stray.safetensors"
    save_file(tensors, str(stray), metadata=read_metadata(files.diffusers))
    fresh = load(tiny_model("flux-dev"), text_encoders=False)
    with pytest.raises(ExportError, match=r"unet\.mid_block"):
        FLUX.load_lora(fresh, stray, "check")


def test_single_block_run_exports_verified_files_and_comfyui_checkpoints_at_1x(
    with_single_blocks: Path, tmp_path: Path
) -> None:
    """The fused linear1 path end to end: diffusers' converter cannot read its tiny widths, so
    the ComfyUI files are verified through the key map; alpha (8, rank 4) is in the tensors."""
    from tests.support.lora_checks import verify_checkpoint
    from training.checkpoints import checkpoint_downloads

    write_image(tmp_path / "data" / "a.png", 256, 256, seed=1)
    write_image(tmp_path / "data" / "b.png", 320, 256, seed=2)
    config = train_config("flux-dev", with_single_blocks, checkpoint_every=2)
    result = train(config, tmp_path / "data", tmp_path / "out")
    assert result.steps_done == 2 and math.isfinite(result.final_loss or math.nan)
    assert Path(result.lora_path or "").is_file() and Path(result.comfyui_path or "").is_file()
    assert [Path(p).suffix for p in result.samples] == [".png"]
    assert_files_are_classifiable(result, "flux-dev")

    folder = Path(result.checkpoints[-1])
    comfyui = load_file(str(checkpoint_downloads(folder)["comfyui"]))
    assert "lora_unet_single_blocks_0_linear1.alpha" in comfyui
    # ComfyUI scales each module by its .alpha tensor / rank (1.0 without one): must be 8 / 4.
    for key, down in comfyui.items():
        if key.endswith(".lora_down.weight"):
            alpha = comfyui[key.removesuffix(".lora_down.weight") + ".alpha"]
            assert float(alpha) / down.shape[0] == ALPHA / RANK, key
    verify_checkpoint(config, folder)
