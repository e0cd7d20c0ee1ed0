"""What every family's LoRA header says: ModelSpec and kohya keys tools classify by, no paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalogue.families import FAMILY_NAMES, family_facts
from tests.training.lora_headers import local_paths
from training.config import TrainingConfig
from training.export import lora_metadata


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_familys_header_names_its_architecture_and_no_local_path(
    family: str, tmp_path: Path
) -> None:
    facts = family_facts(family)
    adapter = {"training_adapter": str(tmp_path / "adapter")} if family == "z-image" else {}
    config = TrainingConfig(
        family=family, base_model=str(tmp_path / "models" / family), trigger_word="ohwx",
        output_name="attune-run-7", **adapter,
    )  # fmt: skip
    metadata = lora_metadata(config, 50, "f" * 64, "high_noise")
    assert metadata["modelspec.sai_model_spec"] == "1.0.1"
    assert metadata["modelspec.architecture"] == f"{facts.architecture}/lora"
    assert metadata["modelspec.implementation"] == facts.implementation
    assert metadata["modelspec.title"] == "attune-run-7_high_noise"
    assert metadata["modelspec.trigger_phrase"] == "ohwx"
    side = config.resolution
    assert metadata["modelspec.resolution"] == f"{side}x{side}"
    assert metadata["modelspec.date"].endswith("+00:00")
    assert metadata["ss_base_model_version"] == facts.base_model_version
    assert metadata["attune.base_model"] == facts.default_source
    assert local_paths(metadata) == {}
    assert str(tmp_path) not in "".join(metadata.values())


def test_known_architectures_are_the_ones_the_ecosystem_uses() -> None:
    assert family_facts("sd15").architecture == "stable-diffusion-v1"
    assert family_facts("sdxl").architecture == "stable-diffusion-xl-v1-base"
    assert family_facts("flux-dev").architecture == "flux-1-dev"
    assert family_facts("sdxl").base_model_version == "sdxl_base_v1-0"


def test_the_path_pattern_finds_paths_and_leaves_hub_ids_and_urls() -> None:
    found = local_paths({
        "a": '{"base_model":"/tmp/pytest-1/tiny"}', "b": "C:\\models\\sd15",
        "hub": "black-forest-labs/FLUX.1-dev", "url": "https://github.com/Wan-Video/Wan2.2",
        "arch": "stable-diffusion-xl-v1-base/lora",
    })  # fmt: skip
    assert set(found) == {"a", "b"}
