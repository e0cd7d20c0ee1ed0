"""The quantised frozen base (training/quantize.py) on the tiny FLUX.2 [klein] model.

The loader stages the denoiser on the CPU while the text encoder runs, quantises it when the
encoders are freed, and the LoRA added on top stays full precision and trains.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.training import flux2_checks as checks
from tests.training.tiny_assets_flow import CPU, train_config, train_steps
from training import train
from training.errors import ConfigError
from training.models import get_family
from training.models.base import LatentBatch
from training.quantize import quantized_linears

KLEIN = get_family("flux2-klein")
STORAGE = {"int8": torch.int8, "fp8": torch.float8_e4m3fn}


def linears(module: torch.nn.Module) -> list[str]:
    return [n for n, m in module.named_modules() if type(m) is torch.nn.Linear]


@pytest.mark.parametrize("mode", ["int8", "fp8"])
def test_frozen_weights_are_quantised_and_the_lora_trains_in_fp32(
    tiny_model: Callable[[str], Path], mode: str
) -> None:
    model = KLEIN.load(
        str(tiny_model("flux2-klein")), dtype=torch.float32, device=CPU, quantize=mode
    )
    transformer = model.pipeline.transformer
    assert model.staged == ("transformer",) and not quantized_linears(transformer)
    embeds = KLEIN.encode_prompts(model, checks.PROMPTS)
    latents = KLEIN.encode_media(model, torch.rand(2, 3, 64, 64) * 2 - 1)
    KLEIN.free_encoders(model)  # places the staged transformer, quantising it

    everything = set(linears(transformer))
    assert set(quantized_linears(transformer)) == everything - {"proj_out"}
    weight = transformer.transformer_blocks[0].attn.to_q.weight
    assert weight.qdata.dtype == STORAGE[mode] and not weight.requires_grad
    assert model.pipeline.vae.dtype == torch.float32  # only the denoiser is quantised

    batch = LatentBatch(latents, embeds, ((64, 64),) * 2, ((0, 0),) * 2)
    losses = train_steps(KLEIN, model, batch, steps=3)  # adds the trainer's LoRA first
    assert all(math.isfinite(loss) for loss in losses)
    trainable = {n: p for n, p in transformer.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert all(p.dtype == torch.float32 for p in trainable.values())
    lora_b = [p for n, p in transformer.named_parameters() if "lora_B" in n]
    assert all(p.abs().sum() > 0 for p in lora_b)
    assert set(quantized_linears(transformer)) >= {"transformer_blocks.0.attn.to_q.base_layer"}


def test_a_load_without_text_encoders_quantises_at_once(
    tiny_model: Callable[[str], Path],
) -> None:
    model = KLEIN.load(
        str(tiny_model("flux2-klein")),
        dtype=torch.float32,
        device=CPU,
        text_encoders=False,
        quantize="int8",
    )
    assert model.staged == () and quantized_linears(model.pipeline.transformer)


def test_training_on_an_int8_base_exports_files_that_load_into_an_int8_base(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    config = train_config("flux2-klein", tiny_model("flux2-klein"), quantize="int8")
    result = train(config, checks.image_data(tmp_path / "data"), tmp_path / "out")
    assert result.steps_done == 2 and math.isfinite(result.final_loss or math.nan)
    assert Path(result.lora_path or "").is_file() and Path(result.comfyui_path or "").is_file()


def test_an_unknown_quantisation_is_refused(tiny_model: Callable[[str], Path]) -> None:
    with pytest.raises(ConfigError, match="quantize"):
        train_config("flux2-klein", tiny_model("flux2-klein"), quantize="int4")
