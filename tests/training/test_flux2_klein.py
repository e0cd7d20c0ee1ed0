"""FLUX.2 [klein] on its tiny random model: Qwen3 prompts, CFG samples, LoRA keys, exports."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.training import flux2_checks as checks
from tests.training.tiny_assets_flow import Trained, load_cpu, pixels
from training.models import get_family

KLEIN = get_family("flux2-klein")


@pytest.fixture(scope="module")
def trained(tiny_model: Callable[[str], Path]) -> Trained:
    return checks.train_tiny(KLEIN, tiny_model("flux2-klein"))


def test_tiny_model_is_a_klein_pipeline_with_a_qwen3_encoder(
    tiny_model: Callable[[str], Path],
) -> None:
    folder = tiny_model("flux2-klein")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "Flux2KleinPipeline"
    assert index["text_encoder"] == ["transformers", "Qwen3ForCausalLM"]
    model = load_cpu(KLEIN, folder)
    assert not model.pipeline.transformer.config.guidance_embeds
    assert not model.pipeline.config.is_distilled
    text = model.pipeline.tokenizer.apply_chat_template(
        [{"role": "user", "content": "a dog"}],
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=False,
    )
    assert text.startswith("<|im_start|>user\na dog<|im_end|>") and "</think>" in text


def test_prompts_are_stacked_qwen3_layers(trained: Trained) -> None:
    embeds = trained.embeds["prompt_embeds"]
    assert embeds.shape == (2, 64, 48)  # the toy tokenizer's 64 tokens, layers 9/18/27 x 16
    assert (embeds[0] - embeds[1]).abs().max() > 0


def test_latents_are_patchified_and_normalised_to_unit_scale(trained: Trained) -> None:
    checks.check_latents_are_patchified_and_unit_scale(trained)


def test_training_steps_give_finite_loss_and_move_the_lora(trained: Trained) -> None:
    checks.check_losses_and_lora_moved(trained)


def test_samples_use_cfg_against_the_cached_empty_prompt(trained: Trained) -> None:
    request = checks.sample_request(trained)

    def render(guidance: float | None, negative: bool = True) -> np.ndarray:
        changed = replace(request, guidance_scale=guidance)
        if not negative:
            changed = replace(changed, negative_embeds=None)
        return pixels(KLEIN.sample(trained.model, changed))

    plain = render(1.0)
    assert np.abs(render(20.0) - plain).mean() > 0.1  # the negative prompt steers the image
    assert np.array_equal(render(20.0, negative=False), plain)  # none cached: CFG off
    assert trained.model.pipeline.transformer.training  # mode restored after sampling


def test_diffusers_and_comfyui_files_have_the_expected_keys(
    trained: Trained, tmp_path: Path
) -> None:
    files = checks.check_diffusers_keys(KLEIN, trained, tmp_path)
    checks.check_comfyui_file(files)


def test_both_files_load_fully_and_change_the_image(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    checks.check_files_load_and_change_the_image(KLEIN, tiny_model("flux2-klein"), tmp_path)


def test_train_end_to_end(tiny_model: Callable[[str], Path], tmp_path: Path) -> None:
    checks.check_train_end_to_end("flux2-klein", tiny_model("flux2-klein"), tmp_path)


def test_killed_run_resumes_bit_for_bit(tiny_model: Callable[[str], Path], tmp_path: Path) -> None:
    checks.check_killed_run_resumes("flux2-klein", tiny_model("flux2-klein"), tmp_path)
