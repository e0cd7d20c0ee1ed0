"""FLUX.2 [dev] on its tiny random model: Mistral 3 prompts, latents, loss, LoRA keys, exports."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.training import flux2_checks as checks
from tests.training.tiny_assets_flow import Trained, load_cpu
from training.models import get_family

FLUX2 = get_family("flux2-dev")


@pytest.fixture(scope="module")
def trained(tiny_model: Callable[[str], Path]) -> Trained:
    return checks.train_tiny(FLUX2, tiny_model("flux2-dev"))


def test_tiny_model_is_a_flux2_pipeline_in_hub_layout(tiny_model: Callable[[str], Path]) -> None:
    folder = tiny_model("flux2-dev")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "Flux2Pipeline"
    assert index["text_encoder"] == ["transformers", "Mistral3ForConditionalGeneration"]
    model = load_cpu(FLUX2, folder)
    assert model.pipeline.transformer.config.guidance_embeds
    assert model.staged == ("transformer",)  # waits while the text encoder runs


def test_prompts_are_stacked_mistral_layers_after_the_system_message(trained: Trained) -> None:
    embeds = trained.embeds["prompt_embeds"]
    assert embeds.shape == (2, 512, 48)  # 512 tokens, layers 10/20/30 of a 16-wide Mistral
    assert (embeds[0] - embeds[1]).abs().max() > 0  # the prompt survives the system message


def test_latents_are_patchified_and_normalised_to_unit_scale(trained: Trained) -> None:
    checks.check_latents_are_patchified_and_unit_scale(trained)


def test_training_steps_give_finite_loss_and_move_the_lora(trained: Trained) -> None:
    checks.check_losses_and_lora_moved(trained)


def test_diffusers_and_comfyui_files_have_the_expected_keys(
    trained: Trained, tmp_path: Path
) -> None:
    files = checks.check_diffusers_keys(FLUX2, trained, tmp_path)
    checks.check_comfyui_file(files)


def test_both_files_load_fully_and_change_the_image(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    checks.check_files_load_and_change_the_image(FLUX2, tiny_model("flux2-dev"), tmp_path)


def test_train_end_to_end(tiny_model: Callable[[str], Path], tmp_path: Path) -> None:
    checks.check_train_end_to_end("flux2-dev", tiny_model("flux2-dev"), tmp_path)


def test_killed_run_resumes_bit_for_bit(tiny_model: Callable[[str], Path], tmp_path: Path) -> None:
    checks.check_killed_run_resumes("flux2-dev", tiny_model("flux2-dev"), tmp_path)
