"""The family catalogue is the one source of family facts, and app and engine agree with it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from app.config import load_settings
from app.plans import DEFAULT_PLANS, parse_plans
from app.trainings.presets import preset_defaults, presets_for
from catalogue.families import FAMILIES, FAMILY_NAMES, FamilyFacts, family_facts
from training.models import FAMILY_NAMES as ENGINE_FAMILY_NAMES
from training.models import get_family
from training.models.sd import BUILTIN_PREFIX

CATALOGUE = Path(__file__).resolve().parents[2] / "catalogue"


def test_the_engine_registers_exactly_the_catalogue_families() -> None:
    assert ENGINE_FAMILY_NAMES == FAMILY_NAMES


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_each_engine_spec_agrees_with_its_catalogue_entry(name: str) -> None:
    facts, spec = family_facts(name), get_family(name).spec
    assert spec.name == facts.name
    assert spec.media == facts.media
    assert (spec.default_resolution, spec.min_resolution, spec.max_resolution) == (
        facts.default_resolution,
        facts.min_resolution,
        facts.max_resolution,
    )
    assert spec.size_multiple == facts.resolution_multiple
    assert (spec.fps, spec.frame_counts) == (facts.fps, facts.frame_counts)
    assert spec.min_clip_frames == facts.min_clip_frames
    assert spec.default_base_model == (facts.hub_id or f"{BUILTIN_PREFIX}{name}")


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_family_has_a_queue_a_source_and_presets_in_the_app(
    name: str, tmp_path: Path
) -> None:
    settings = load_settings({}, {"instance_path": tmp_path, "env": "testing"})
    facts = family_facts(name)
    assert settings.family_queues[name] == facts.gpu_class
    assert settings.model_sources[name] == facts.default_source
    presets = presets_for(name)
    assert ("motion" in presets) == facts.is_video
    for preset in presets:
        defaults = preset_defaults(preset, name)
        assert defaults["learning_rate"] == facts.learning_rate
        assert defaults["resolution"] == facts.default_resolution
        assert defaults["quantize"] == facts.quantize


def test_plans_offer_every_family_by_its_media_and_refuse_unknown_ones() -> None:
    images = {n for n, f in FAMILIES.items() if f.media == "image"}
    videos = set(FAMILIES) - images
    hobby, pro, studio = DEFAULT_PLANS
    assert set(hobby.families) == images
    assert set(pro.families) == set(studio.families) == images | videos
    with pytest.raises(ValueError, match="unknown families"):
        parse_plans('[{"name": "pro", "families": ["sd99"]}]')


def test_an_entry_that_contradicts_itself_is_refused() -> None:
    with pytest.raises(ValueError, match="default resolution"):
        FamilyFacts(**{**vars(FAMILIES["sd15"]), "default_resolution": 4096})
    with pytest.raises(ValueError, match="fps and max_frames"):
        FamilyFacts(**{**vars(FAMILIES["sd15"]), "media": "video"})
    with pytest.raises(ValueError, match="quantize"):
        FamilyFacts(**{**vars(FAMILIES["sd15"]), "quantize": "int4"})


def test_the_24gb_class_loads_flux2_klein_int8_and_the_config_takes_it() -> None:
    from training.config import TrainingConfig

    assert family_facts("flux2-klein").gpu_class == "gpu-24gb"
    defaults = preset_defaults("character", "flux2-klein")
    assert defaults["quantize"] == "int8"
    config = TrainingConfig.from_dict({"family": "flux2-klein", **defaults})
    assert config.quantize == "int8"
    assert preset_defaults("character", "flux2-dev")["quantize"] == "none"


def test_the_catalogue_imports_only_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) | {"__future__", "catalogue"}
    for path in CATALOGUE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_the_choices_a_person_is_offered_are_the_ones_the_engine_takes() -> None:
    import typing

    from app.trainings.params import CHOICES
    from training.config import TrainingConfig

    hints = typing.get_type_hints(TrainingConfig)
    for name, choices in CHOICES.items():
        assert set(choices) == set(typing.get_args(hints[name])), name
    for preset in presets_for("tiny-sd"):
        defaults = preset_defaults(preset, "tiny-sd")
        assert defaults["save_precision"] == TrainingConfig.save_precision  # bf16, said once
