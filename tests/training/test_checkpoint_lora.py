"""Every checkpoint folder holds both LoRA files, which users can download and load as is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from tests.support.lora_checks import verify_checkpoint
from training import TrainingConfig, train
from training.checkpoints import checkpoint_downloads
from training.lora_files import read_metadata


def _render(pipe: object) -> np.ndarray:
    generator = torch.Generator("cpu").manual_seed(7)
    return pipe(  # type: ignore[operator]
        "photo of sks dog",
        num_inference_steps=2,
        width=64,
        height=64,
        generator=generator,
        output_type="np",
    ).images[0]


def test_checkpoint_lora_loads_with_load_lora_weights_and_changes_the_image(
    tmp_path: Path,
    image_dataset: Callable[..., Path],
    tiny_config: Callable[..., TrainingConfig],
    tiny_model: Callable[[str], Path],
) -> None:
    from diffusers import StableDiffusionPipeline

    data = image_dataset([(64, 64), (64, 64)])
    config = tiny_config(steps=4, checkpoint_every=2, keep_checkpoints=2, learning_rate=2e-2)
    result = train(config, data, tmp_path / "out")
    downloads = checkpoint_downloads(Path(result.checkpoints[0]))
    assert set(downloads) == {"lora", "comfyui"}
    first = downloads["lora"]
    assert first.parent.name == "step-000002" and first.name == "lora_diffusers.safetensors"
    assert read_metadata(downloads["comfyui"])["attune.steps"] == "2"
    # Saved in bf16 by default; they apply the fp32 resume weights' deltas within bf16 precision.
    for path in downloads.values():
        assert {t.dtype for t in load_file(str(path)).values()} == {torch.bfloat16}
    verify_checkpoint(config, first.parent)

    metadata = read_metadata(first)
    final = read_metadata(Path(result.lora_path or ""))
    assert metadata["attune.steps"] == "2" and final["attune.steps"] == "4"
    per_save = ("attune.steps", "modelspec.date")
    assert {k: v for k, v in metadata.items() if k not in per_save} == {
        k: v for k, v in final.items() if k not in per_save
    }

    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_model("tiny-sd")))
    pipe.set_progress_bar_config(disable=True)
    before = _render(pipe)
    pipe.load_lora_weights(str(first.parent), weight_name=first.name)
    after = _render(pipe)
    assert np.abs(after - before).mean() > 1e-3


def test_bf16_run_trains_samples_and_exports_fp32_lora_on_request(
    tmp_path: Path,
    image_dataset: Callable[..., Path],
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    """The GPU recipe on the CPU: bf16 weights, LoRA under autocast, fp32 master weights."""
    data = image_dataset([(64, 64)])
    config = tiny_config(
        steps=2,
        mixed_precision="bf16",
        sample_every=2,
        sample_prompts=("photo of sks",),
        save_precision="fp32",
    )
    result = train(config, data, tmp_path / "out")
    assert result.final_loss is not None and np.isfinite(result.final_loss)
    assert len(result.samples) == 1 and Path(result.samples[0]).is_file()
    for path in result.lora_files.values():
        tensors = load_file(path)
        assert tensors and all(t.dtype == torch.float32 for t in tensors.values())


def test_export_check_covers_feed_forward_modules_in_peft_spelling() -> None:
    """diffusers renames only attention keys; FFN keys keep lora_A/lora_B and are checked too."""
    from training.export import expected_deltas

    down, up = torch.ones(4, 8), torch.ones(16, 4)
    state = {
        "blocks.0.attn.to_q.lora.down.weight": down,
        "blocks.0.attn.to_q.lora.up.weight": up,
        "blocks.0.ff.net.2.lora_A.weight": down,
        "blocks.0.ff.net.2.lora_B.weight": up,
    }
    deltas = expected_deltas(state, alpha=8.0, rank=4)
    assert set(deltas) == {"blocks.0.attn.to_q", "blocks.0.ff.net.2"}
    assert float(deltas["blocks.0.ff.net.2"][0, 0]) == 4 * 2.0
