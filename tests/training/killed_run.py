"""A training run killed with SIGKILL once it has written a checkpoint, for resume tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.training_data import write_image
from tests.training.tiny_assets_flow import train_config
from training import TrainingConfig, TrainResult, train
from training.checkpoints import list_checkpoints

REPO = Path(__file__).resolve().parents[2]


def kill_after_first_checkpoint(
    config: TrainingConfig, data: Path, out: Path, work: Path, timeout_s: float = 180
) -> int:
    """Run ``python -m training train`` and SIGKILL it at its first checkpoint; the last step.

    Asserts the process really died mid-run (killed, with a checkpoint before the last step).
    """
    config_file = work / "config.json"
    config_file.write_text(json.dumps(config.to_dict()), encoding="utf-8")
    command = [sys.executable, "-m", "training", "train", "--config", str(config_file)]
    command += ["--data", str(data), "--out", str(out)]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not list_checkpoints(out) and process.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    saved = list_checkpoints(out)
    assert saved and process.returncode == -signal.SIGKILL
    last = int(saved[-1].name.removeprefix("step-"))
    assert 0 < last < config.steps
    return last


def assert_same_lora(path: str | None, expected_path: str | None) -> None:
    """Two LoRA files hold the same tensors (to fp32 rounding)."""
    import torch
    from safetensors.torch import load_file

    assert path is not None and expected_path is not None
    expected = load_file(expected_path)
    got = load_file(path)
    assert set(got) == set(expected)
    for key, tensor in got.items():
        torch.testing.assert_close(tensor, expected[key], rtol=1e-5, atol=1e-6)


def assert_image_run_resumes_exactly(family: str, base_model: Path, work: Path) -> TrainResult:
    """8 steps on two images, killed at the first checkpoint and resumed, equal an unbroken run.

    Returns the unbroken run's result (both LoRA files written and verified by the export).
    """
    data = work / "data"
    write_image(data / "a.png", 256, 256, seed=1)
    write_image(data / "b.png", 320, 256, seed=2)
    (data / "a.txt").write_text("a painting of [trigger] dog", encoding="utf-8")
    config = train_config(family, base_model, steps=8, checkpoint_every=2, sample_every=8)
    last = kill_after_first_checkpoint(config, data, work / "out", work)
    resumed = train(config, data, work / "out")
    assert resumed.resumed_from == last and resumed.steps_done == config.steps
    unbroken = train(config, data, work / "unbroken")
    assert_same_lora(resumed.lora_path, unbroken.lora_path)
    assert Path(unbroken.comfyui_path or "").is_file()
    return unbroken


def assert_killed_run_resumes_exactly(
    config: TrainingConfig, data: Path, work: Path
) -> TrainResult:
    """Kill a run at its first checkpoint, resume it, compare every file with an unbroken run.

    Every exported file (one pair per denoiser for families with several) must hold the same
    tensors; returns the resumed run's result.
    """
    from training import ProgressEvent

    out = work / "killed"
    last = kill_after_first_checkpoint(config, data, out, work)
    events: list[ProgressEvent] = []
    resumed = train(config, data, out, on_progress=events.append)
    assert resumed.resumed_from == last and resumed.steps_done == config.steps
    assert next(e.step for e in events if e.kind == "step") == last + 1
    unbroken = train(config, data, work / "unbroken")
    assert resumed.lora_files.keys() == unbroken.lora_files.keys()
    for kind, path in unbroken.lora_files.items():
        assert_same_lora(resumed.lora_files[kind], path)
    return resumed
