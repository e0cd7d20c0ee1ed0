"""The CLI's make-tiny and plan commands, and that `import training` stays light."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.training_data import write_image
from training import FAMILY_NAMES
from training.cli import main

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "diffusers", "transformers", "peft")


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def test_import_and_config_and_plan_do_not_load_torch(tmp_path: Path) -> None:
    image = write_image(tmp_path / "a.png", 96, 64)
    code = (
        "import training\n"
        "training.TrainingConfig(family='sdxl')\n"
        f"training.plan_buckets([{str(image)!r}], 'tiny-sd', 64)\n"
        "from training.errors import ConfigError"
    )
    loaded = _modules_after(code)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_family_spec_loads_without_torch(family: str) -> None:
    loaded = _modules_after(f"from training.models import get_family\nget_family({family!r}).spec")
    assert not loaded & set(HEAVY)


def test_plan_command_prints_buckets_and_drops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_image(tmp_path / "wide.png", 128, 64)
    write_image(tmp_path / "speck.png", 8, 8)
    assert main(["plan", "--family", "tiny-sd", "--resolution", "64", "--json", str(tmp_path)]) == 0
    rows = {Path(r["file"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert (rows["wide.png"]["bucket_width"], rows["wide.png"]["bucket_height"]) == (80, 48)
    assert rows["speck.png"]["dropped"] and "too small" in rows["speck.png"]["reason"]


def test_make_tiny_command_writes_a_hub_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["make-tiny", "tiny-sd", str(tmp_path / "tiny")]) == 0
    index = json.loads((tmp_path / "tiny" / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    for sub in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (tmp_path / "tiny" / sub).is_dir()


def test_train_command_reports_config_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"family": "tiny-sd", "rank": 0}))
    status = main(["train", "--config", str(config), "--data", str(tmp_path), "--out", "o"])
    assert status == 2
    assert "rank" in capsys.readouterr().err


def test_train_command_runs_and_prints_json_events(
    tmp_path: Path,
    image_dataset: Callable[..., Path],
    tiny_model: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = image_dataset([(64, 64)])
    config = tmp_path / "config.json"
    fields = {"family": "tiny-sd", "base_model": str(tiny_model("tiny-sd")), "steps": 2, "rank": 4}
    config.write_text(json.dumps({**fields, "resolution": 64}))
    assert (
        main(["train", "--config", str(config), "--data", str(data), "--out", str(tmp_path)]) == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["step"] for e in lines if e.get("kind") == "step"] == [1, 2]
    assert lines[-1]["result"]["steps_done"] == 2


def test_bench_command_times_our_loop_against_the_reference(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["bench", "--device", "cpu", "--families", "tiny-sd", "--steps", "2", "--warmup", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "tiny-sd (tiny model) at 64px" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert float(rows["ours"][1]) > 0 and float(rows["reference"][1]) > 0
    assert "ours/reference speed:" in out
