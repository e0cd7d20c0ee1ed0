"""A killed run resumes from its last checkpoint; a stop request ends the run within a step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.training.killed_run import assert_same_lora, kill_after_first_checkpoint
from training import ProgressEvent, TrainingConfig, train
from training.errors import ResumeMismatch


def test_killed_run_resumes_from_its_checkpoint_and_matches_an_unbroken_run(
    tmp_path: Path,
    image_dataset: Callable[..., Path],
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    data = image_dataset([(64, 64), (80, 64), (64, 96)])
    config = tiny_config(steps=80, checkpoint_every=5, keep_checkpoints=2, caption_dropout=0.3)
    out = tmp_path / "out"
    last = kill_after_first_checkpoint(config, data, out, tmp_path)

    events: list[ProgressEvent] = []
    resumed = train(config, data, out, on_progress=events.append)
    assert resumed.resumed_from == last
    assert next(e.step for e in events if e.kind == "step") == last + 1
    assert resumed.steps_done == config.steps and not resumed.stopped
    assert len(resumed.checkpoints) == 2  # rotated to keep_checkpoints

    unbroken = train(config, data, tmp_path / "unbroken")
    assert_same_lora(resumed.lora_path, unbroken.lora_path)


def test_stop_request_ends_within_one_step_and_saves_a_checkpoint(
    tmp_path: Path,
    image_dataset: Callable[..., Path],
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    data = image_dataset([(64, 64), (64, 64)])
    config = tiny_config(steps=50, checkpoint_every=2)  # step 2 saves one on its own
    polls: list[int] = []

    def stop_on_third_poll() -> bool:
        polls.append(1)
        return len(polls) >= 3

    events: list[ProgressEvent] = []
    result = train(config, data, tmp_path / "out", events.append, stop_on_third_poll)
    assert result.stopped and result.steps_done == 2
    assert [e.step for e in events if e.kind == "step"] == [1, 2]
    assert Path(result.checkpoints[-1]).name == "step-000002"
    assert [e.step for e in events if e.kind == "checkpoint"] == [2]  # saved once, not again
    assert result.lora_path is None
    assert any(e.kind == "log" and "stopped" in (e.message or "") for e in events)

    finished = train(config.replace(steps=4), data, tmp_path / "out")
    assert finished.resumed_from == 2 and finished.steps_done == 4
    assert finished.lora_path is not None and Path(finished.lora_path).is_file()


def test_a_resume_refuses_other_settings_or_data_and_accepts_more_steps(
    tmp_path: Path,
    image_dataset: Callable[..., Path],
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    import shutil

    data = image_dataset([(64, 64), (64, 64)])
    config = tiny_config(steps=2, checkpoint_every=2, alpha=4)
    out = tmp_path / "out"
    train(config, data, out)
    other = shutil.copytree(data, tmp_path / "other")
    (other / "img1.txt").write_text("a painting of sks", encoding="utf-8")
    with pytest.raises(ResumeMismatch) as caught:  # alpha alone scales the learned effect 4x
        train(config.replace(alpha=16.0, steps=4), other, out)
    assert set(caught.value.fields) == {"alpha", "dataset"}
    assert "alpha 4.0 -> 16.0" in str(caught.value) and "dataset" in str(caught.value)

    more = train(config.replace(steps=3), data, out)  # "continue": only more steps
    assert more.resumed_from == 2 and more.steps_done == 3

    events: list[ProgressEvent] = []
    start = Path(more.checkpoints[-1])
    anew = train(config.replace(alpha=16.0), other, tmp_path / "new", events.append, None, start)
    assert anew.resumed_from is None and anew.steps_done == 2  # a new run, on purpose
    assert any(f"LoRA weights of {start.name}" in (e.message or "") for e in events)


@pytest.mark.parametrize("keep", [1, 3])
def test_checkpoints_are_zero_padded_and_rotated(
    tmp_path: Path,
    image_dataset: Callable[..., Path],
    tiny_config: Callable[..., TrainingConfig],
    keep: int,
) -> None:
    data = image_dataset([(64, 64)])
    result = train(tiny_config(steps=6, checkpoint_every=2, keep_checkpoints=keep), data, tmp_path)
    names = [Path(p).name for p in result.checkpoints]
    assert names == ["step-000002", "step-000004", "step-000006"][-keep:]
    contents = {p.name for p in Path(result.checkpoints[-1]).iterdir()}
    assert contents == {
        "lora.safetensors",
        "lora_comfyui.safetensors",
        "lora_diffusers.safetensors",
        "optimizer.pt",
        "rng.pt",
        "state.json",
    }
