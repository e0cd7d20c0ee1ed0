"""Wan 2.2 T2V A14B on its tiny model: two experts, each trained only on its own noise range."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.support.training_data import write_clip_dataset
from tests.training.killed_run import assert_killed_run_resumes_exactly
from tests.training.lora_headers import assert_files_are_classifiable
from tests.training.tiny_assets_flow import CPU, kohya_deltas, load_cpu, peft_deltas, pixels
from tests.training.tiny_assets_flow import train_config as base_config
from training import TrainResult, train
from training.cache import cache_latents
from training.config import TrainingConfig
from training.data.dataset import prepare_data
from training.errors import ModelLoadError
from training.loop import advance
from training.models import get_family
from training.models.base import LoadedModel
from training.reporter import Reporter
from training.trainer import load_family, start_session

A14B = get_family("wan22-t2v-a14b")
EXPERTS = ("high_noise", "low_noise")


def train_config(folder: Path, **fields: object) -> TrainingConfig:
    return base_config("wan22-t2v-a14b", folder, **fields)


@pytest.fixture(scope="module")
def exported(
    tiny_model: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> TrainResult:
    """Four alternating steps through train(): it verifies every file in a fresh pipeline."""
    data = write_clip_dataset(tmp_path_factory.mktemp("a14b-data"), fps=16, frames=7)
    config = train_config(tiny_model("wan22-t2v-a14b"), steps=4, sample_every=4, learning_rate=5e-2)
    return train(config, data, tmp_path_factory.mktemp("a14b-out"))


def test_spec_is_wan_at_16fps_and_the_tiny_model_has_both_experts(
    tiny_model: Callable[[str], Path],
) -> None:
    assert A14B.spec.fps == 16 and A14B.spec.frame_counts == tuple(range(1, 82, 4))
    index = json.loads((tiny_model("wan22-t2v-a14b") / "model_index.json").read_text())
    assert index["transformer_2"] == ["diffusers", "WanTransformer3DModel"]
    assert index["boundary_ratio"] == 0.875


def test_a_single_transformer_wan_folder_is_refused(tiny_model: Callable[[str], Path]) -> None:
    with pytest.raises(ModelLoadError, match=r"not a Wan 2\.2 A14B pipeline"):
        load_cpu(A14B, tiny_model("wan22-ti2v-5b"))


def test_each_expert_runs_and_learns_only_on_its_own_noise_range(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    config = train_config(tiny_model("wan22-t2v-a14b"), steps=8, sample_every=0)
    family, model = load_family(config, torch.device("cpu"))
    cache = cache_latents(
        family,
        model,
        prepare_data(config, write_clip_dataset(tmp_path / "d", fps=16, frames=7)),
        [],
    )
    session = start_session(config, family, model, cache, tmp_path / "o", Reporter(8, None))
    seen: dict[str, list[float]] = {name: [] for name in EXPERTS}
    for name, expert in family.denoisers(model).items():
        expert.register_forward_pre_hook(
            lambda _m, _a, kw, name=name: seen[name].extend(kw["timestep"].tolist()),
            with_kwargs=True,
        )
    flats = dict(zip(family.denoisers(model), session.params, strict=True))
    for step in range(config.steps):
        before = {name: flat.detach().clone() for name, flat in flats.items()}
        calls = {name: len(times) for name, times in seen.items()}
        advance(session, step)
        active = "high_noise" if step % 2 == 0 else "low_noise"
        idle = next(name for name in EXPERTS if name != active)
        assert len(seen[active]) == calls[active] + 1 and len(seen[idle]) == calls[idle]
        assert not torch.equal(flats[active], before[active])
        assert torch.equal(flats[idle], before[idle])  # no stale AdamW momentum either
    boundary = 1000 * model.pipeline.config.boundary_ratio
    assert len(seen["high_noise"]) == len(seen["low_noise"]) == 4
    assert all(boundary <= t < 1000 for t in seen["high_noise"])
    assert all(0 < t < boundary for t in seen["low_noise"])


def test_one_diffusers_and_one_comfyui_file_per_expert_with_its_own_weights(
    exported: TrainResult,
) -> None:
    assert set(exported.lora_files) == {
        f"{kind}_{e}" for kind in ("lora", "comfyui") for e in EXPERTS
    }
    assert Path(exported.lora_path or "").name == "lora_high_noise.safetensors"
    states = {}
    for expert in EXPERTS:
        path = exported.lora_files[f"lora_{expert}"]
        with safe_open(path, framework="pt") as handle:
            assert handle.metadata()["attune.denoiser"] == expert
            names = handle.keys()
        assert all(k.startswith("transformer.blocks.") for k in names)
        states[expert] = load_file(path)
        kohya = load_file(exported.lora_files[f"comfyui_{expert}"])
        assert all(k.startswith("diffusion_model.blocks.") for k in kohya)
        got = kohya_deltas(kohya)["diffusion_model.blocks.1.self_attn.q"]
        want = peft_deltas(_unprefixed(states[expert]))["blocks.1.attn1.to_q"]
        torch.testing.assert_close(got, want)
    key = "transformer.blocks.0.attn1.to_q.lora_B.weight"
    assert not torch.equal(states["high_noise"][key], states["low_noise"][key])


def _unprefixed(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("transformer."): v for k, v in state.items()}


def test_each_file_loads_fully_into_its_own_expert_and_changes_its_prediction(
    exported: TrainResult, tiny_model: Callable[[str], Path]
) -> None:
    folder = tiny_model("wan22-t2v-a14b")
    base = load_cpu(A14B, folder)
    embeds = A14B.encode_prompts(base, ["a video of sks dog"])["prompt_embeds"]
    noisy = torch.randn(1, 4, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    timestep = {"high_noise": torch.tensor([950.0]), "low_noise": torch.tensor([400.0])}

    def predict(model: LoadedModel, expert: str) -> torch.Tensor:
        with torch.no_grad():
            module = A14B.denoisers(model)[expert]
            return module(noisy, timestep[expert], embeds, return_dict=False)[0]

    for expert in EXPERTS:
        other = next(e for e in EXPERTS if e != expert)
        before = predict(base, expert)
        predictions = []
        for kind in ("lora", "comfyui"):
            fresh = load_cpu(A14B, folder, text_encoders=False)
            A14B.load_lora(fresh, Path(exported.lora_files[f"{kind}_{expert}"]), kind, expert)
            assert len(A14B.lora_modules(fresh, kind, expert)) == 20  # 2 blocks x 10 linears
            assert not A14B.lora_modules(fresh, kind, other)
            predictions.append(predict(fresh, expert))
            torch.testing.assert_close(predict(fresh, other), predict(base, other))
        torch.testing.assert_close(predictions[0], predictions[1])  # both layouts, one LoRA
        change = (predictions[0] - before).norm() / before.norm()
        assert change > 1e-3, expert
    with pytest.raises(ModelLoadError, match="for one expert"):
        A14B.load_lora(fresh, Path(exported.lora_files["lora_low_noise"]), "x")


def test_training_end_to_end_reports_finite_loss_and_writes_clip_samples(
    exported: TrainResult,
) -> None:
    assert exported.steps_done == 4 and math.isfinite(exported.final_loss or math.nan)
    assert [Path(p).suffix for p in exported.samples] == [".mp4", ".webp"]
    assert_files_are_classifiable(exported, "wan22-t2v-a14b")


def test_a_killed_run_resumes_both_experts_to_the_same_loras(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    config = train_config(tiny_model("wan22-t2v-a14b"), steps=7, checkpoint_every=3, sample_every=0)
    resumed = assert_killed_run_resumes_exactly(
        config, write_clip_dataset(tmp_path / "data", fps=16, frames=7), tmp_path
    )
    assert len(resumed.lora_files) == 4


def test_generation_renders_with_both_expert_files(
    exported: TrainResult, tiny_model: Callable[[str], Path]
) -> None:
    from training import generate

    loras = {e: exported.lora_files[f"lora_{e}"] for e in EXPERTS}
    folder = str(tiny_model("wan22-t2v-a14b"))
    common = {"steps": 4, "resolution": 32, "frames": 5, "device": "cpu", "seed": 2}
    with_lora = generate("wan22-t2v-a14b", folder, loras, ["sks dog"], **common)
    without = generate("wan22-t2v-a14b", folder, None, ["sks dog"], **common)
    assert len(with_lora[0]) == 5
    assert abs(pixels(with_lora[0]) - pixels(without[0])).mean() > 0.5


def test_an_int8_base_quantises_both_experts(tiny_model: Callable[[str], Path]) -> None:
    from training.quantize import quantized_linears

    folder = str(tiny_model("wan22-t2v-a14b"))
    staged = A14B.load(folder, dtype=torch.float32, device=CPU, quantize="int8")
    assert staged.staged == ("transformer", "transformer_2")  # both wait while T5 encodes
    A14B.free_encoders(staged)
    for expert in A14B.denoisers(staged).values():
        assert "blocks.0.attn1.to_q" in quantized_linears(expert)
