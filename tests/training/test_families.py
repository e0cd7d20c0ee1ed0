"""End-to-end LoRA training on each SD family's tiny model: loss, key names, export, effect."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from catalogue.families import family_facts
from tests.support.training_data import SD_FAMILIES, TEST_RESOLUTION, write_image
from tests.training.lora_headers import assert_files_are_classifiable
from training import TrainResult, get_family, train
from training.config import TrainingConfig
from training.lora_files import read_metadata
from training.results import ProgressEvent


@dataclass
class TrainedRun:
    family: str
    config: TrainingConfig
    result: TrainResult
    events: list[ProgressEvent]


@pytest.fixture(scope="module", params=SD_FAMILIES)
def trained(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tiny_model: Callable[[str], Path],
) -> TrainedRun:
    """Three real steps per family with a high learning rate so the LoRA visibly matters."""
    family = request.param
    side = TEST_RESOLUTION[family]
    data = tmp_path_factory.mktemp(f"data-{family}")
    write_image(data / "a.png", side, side, seed=1)
    write_image(data / "b.png", side + side // 4, side, seed=2)
    (data / "a.txt").write_text("a painting of [trigger] dog", encoding="utf-8")
    config = TrainingConfig(
        family=family,
        base_model=str(tiny_model(family)),
        steps=3,
        rank=4,
        alpha=8,
        learning_rate=2e-2,
        resolution=side,
        trigger_word="sks",
        caption_dropout=0.0,
        checkpoint_every=0,
        sample_every=3,
        sample_prompts=("photo of {trigger}",),
        sample_steps=2,
        mixed_precision="fp32",
        output_name=f"{family}-test",
    )
    events: list[ProgressEvent] = []
    out = tmp_path_factory.mktemp(f"out-{family}")
    result = train(config, data, out, on_progress=events.append)
    return TrainedRun(family, config, result, events)


def test_training_steps_report_finite_loss(trained: TrainedRun) -> None:
    steps = [e for e in trained.events if e.kind == "step"]
    assert [e.step for e in steps] == [1, 2, 3]
    assert all(e.loss is not None and math.isfinite(e.loss) for e in steps)
    assert trained.result.steps_done == 3 and not trained.result.stopped
    assert (trained.result.seconds_per_step or 0) > 0  # what the service calibrates with
    assert trained.result.final_loss is not None and math.isfinite(trained.result.final_loss)
    assert trained.events[-1].kind == "done"


def test_the_captions_trained_are_written_to_a_file_and_logged_once(trained: TrainedRun) -> None:
    lines = Path(trained.result.captions_path or "").read_text(encoding="utf-8").splitlines()
    assert lines[1:] == ["a.png\ta painting of sks dog", "b.png\tphoto of sks"]
    logs = [e.message or "" for e in trained.events if e.kind == "log"]
    assert [m for m in logs if "captions" in m] == [
        "training 2 items on 2 distinct captions (captions.txt)"
    ]


def test_samples_written_with_fixed_names(trained: TrainedRun) -> None:
    assert [Path(p).name for p in trained.result.samples] == ["step-000003-0.png"]
    assert all(Path(p).is_file() for p in trained.result.samples)


def test_diffusers_file_has_diffusers_keys_and_metadata(trained: TrainedRun) -> None:
    from safetensors import safe_open

    path = Path(trained.result.lora_path or "")
    assert path.name == f"{trained.family}-test.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        keys = list(handle.keys())
    assert keys and all(k.startswith("unet.") and ".lora" in k for k in keys)
    assert any(k.endswith("attn1.to_q.lora.down.weight") for k in keys)
    meta = read_metadata(path)
    assert meta["attune.family"] == trained.family
    assert meta["attune.trigger_word"] == "sks"
    assert meta["attune.rank"] == "4" and meta["attune.alpha"] == "8"
    assert meta["attune.steps"] == "3"
    assert meta["attune.dataset_fingerprint"] == trained.result.dataset_fingerprint
    # The tiny model's folder is not named: the header names the family's published base.
    shared = trained.config.replace(base_model=family_facts(trained.family).default_source)
    assert meta["attune.base_model"] == shared.base_model
    assert TrainingConfig.from_dict(_json(meta["attune.config"])) == shared
    assert_files_are_classifiable(trained.result, trained.family)


def test_comfyui_file_has_kohya_keys(trained: TrainedRun) -> None:
    from safetensors import safe_open

    path = Path(trained.result.comfyui_path or "")
    with safe_open(str(path), framework="pt") as handle:
        keys = set(handle.keys())
        alpha = handle.get_tensor(next(k for k in keys if k.endswith(".alpha")))
    modules = {k.rsplit(".", 2)[0] for k in keys if k.endswith(".lora_down.weight")}
    assert modules and all(m.startswith("lora_unet_") and "." not in m for m in modules)
    for module in modules:
        assert {f"{module}.lora_up.weight", f"{module}.alpha"} <= keys
    assert float(alpha) == 8.0
    assert read_metadata(path)["attune.family"] == trained.family


def test_both_files_load_fully_and_change_the_output(trained: TrainedRun) -> None:
    import numpy as np
    import torch

    family = get_family(trained.family)
    model = family.load(trained.config.base_model, dtype=torch.float32, device=torch.device("cpu"))
    pipe = model.pipeline
    side = trained.config.resolution

    def render() -> np.ndarray:
        generator = torch.Generator("cpu").manual_seed(7)
        image = pipe(
            "photo of sks", num_inference_steps=2, width=side, height=side, generator=generator
        ).images[0]
        return np.asarray(image, dtype=np.float32)

    before = render()
    expected = _module_names(Path(trained.result.lora_path or ""))
    pipe.load_lora_weights(trained.result.lora_path, adapter_name="diffusers_file")
    assert family.lora_modules(model, "diffusers_file") == expected
    with_diffusers_file = render()
    pipe.delete_adapters("diffusers_file")
    pipe.load_lora_weights(trained.result.comfyui_path, adapter_name="kohya_file")
    assert family.lora_modules(model, "kohya_file") == expected
    with_kohya_file = render()

    assert np.abs(with_diffusers_file - before).mean() > 2.0  # the LoRA changes the image
    assert np.abs(with_kohya_file - with_diffusers_file).mean() < 0.5  # same weights


def _module_names(path: Path) -> set[str]:
    from safetensors import safe_open

    suffix = ".lora.down.weight"
    with safe_open(str(path), framework="pt") as handle:
        keys = list(handle.keys())
    return {k[len("unet.") : -len(suffix)] for k in keys if k.endswith(suffix)}


def _json(text: str) -> dict[str, object]:
    import json

    return json.loads(text)
