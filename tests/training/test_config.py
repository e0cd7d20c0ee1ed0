"""TrainingConfig: defaults, JSON round trip, and typed errors naming the bad field."""

from __future__ import annotations

import json

import pytest

from training import FAMILY_NAMES, TrainingConfig, get_family
from training.errors import ConfigError


def test_defaults_resolve_from_the_family() -> None:
    config = TrainingConfig(family="sdxl")
    spec = get_family("sdxl").spec
    assert config.base_model == spec.default_base_model
    assert config.resolution == spec.default_resolution
    assert config.alpha == float(config.rank)


def test_round_trips_through_json() -> None:
    config = TrainingConfig(
        family="tiny-sd", steps=7, sample_prompts=("a", "b"), gradient_checkpointing=True
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert data["sample_prompts"] == ["a", "b"]
    assert TrainingConfig.from_dict(data) == config


def test_is_frozen() -> None:
    config = TrainingConfig()
    with pytest.raises(AttributeError):
        config.steps = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rank", 0),
        ("rank", 1000),
        ("learning_rate", 0.0),
        ("learning_rate", 5.0),
        ("steps", 0),
        ("steps", 10**7),
        ("resolution", 8),
        ("resolution", 4096),
        ("resolution", 72),  # not a multiple of tiny-sd's 16
        ("batch_size", 0),
        ("caption_dropout", 1.5),
        ("keep_checkpoints", 0),
        ("mixed_precision", "fp8"),
        ("gradient_checkpointing", "sometimes"),
        ("caption_template", "photo of {name}"),
        ("output_name", "../escape"),
        ("steps", "100"),
        ("compile", "yes"),
    ],
)
def test_out_of_range_values_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        TrainingConfig(family="tiny-sd", **{field: value})  # type: ignore[arg-type]
    assert caught.value.field == field
    assert field in str(caught.value)


def test_unknown_family_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        TrainingConfig(family="sd99")
    assert caught.value.field == "family"
    assert "tiny-sd" in caught.value.message  # lists the known families


def test_unknown_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        TrainingConfig.from_dict({"family": "tiny-sd", "stepz": 5})
    assert caught.value.field == "stepz"


def test_registry_names_every_family() -> None:
    assert set(FAMILY_NAMES) == {
        *("tiny-sd", "sd15", "sdxl", "flux-dev", "wan21-t2v-1.3b"),
        *("qwen-image", "z-image"),
        *("flux2-dev", "flux2-klein"),
        *("wan22-ti2v-5b", "wan22-t2v-a14b", "ltx2"),
    }
    for name in ("tiny-sd", "sd15", "sdxl"):
        assert get_family(name).spec.name == name
