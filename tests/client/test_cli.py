"""The `attune` command against a fake /api/v1: the key saved readable by its owner only,
clear messages and non-zero exits for refusals, downloads that never send the key."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
from attune_client.cli import main
from click.testing import CliRunner, Result

from tests.client.fake_api import BASE, KEY, FakeApi


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty config folder of the user's (XDG_CONFIG_HOME), no key in the environment."""
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for name in ("ATTUNE_CONFIG_DIR", "ATTUNE_URL", "ATTUNE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return home / "attune"


def attune(api: FakeApi, *args: str, stdin: str | None = None) -> Result:
    options: dict[str, Any] = {"transport": api.transport(), "sleep": lambda _: None}
    return CliRunner().invoke(main, list(args), obj=options, input=stdin)


def test_login_checks_the_key_and_saves_it_readable_only_by_its_owner(config_home: Path) -> None:
    api = FakeApi()
    refused = attune(api, "login", "--url", BASE, "--key", "att_live_wrong")
    assert refused.exit_code == 1 and "not known" in refused.output
    assert "attune login" in refused.output and not config_home.exists()  # nothing saved
    done = attune(api, "login", "--url", BASE + "/", stdin=KEY + "\n")  # asked, not echoed
    assert done.exit_code == 0, done.output
    assert "Pro plan, 2.0 GPU-hours left" in done.output and KEY not in done.output
    saved = config_home / "config.toml"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_home.stat().st_mode) == 0o700
    assert tomllib.loads(saved.read_text()) == {"url": BASE, "key": KEY}
    assert api.seen("GET", "/api/v1/usage")[-1].headers["Authorization"] == f"Bearer {KEY}"
    # An existing file with looser rights is replaced by a private one.
    saved.chmod(0o644)
    assert attune(api, "login", "--key", KEY).exit_code == 0
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert attune(api, "logout").exit_code == 0 and not saved.exists()


def test_commands_without_a_key_say_how_to_sign_in(config_home: Path) -> None:
    result = attune(FakeApi(), "usage")
    assert result.exit_code == 2 and "attune login" in result.output


def test_download_saves_the_lora_and_never_sends_the_key_to_storage(
    config_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTUNE_URL", BASE)
    monkeypatch.setenv("ATTUNE_API_KEY", KEY)
    api = FakeApi()
    api.artifacts = {"lora": b"weights", "comfyui": b"comfy"}
    result = attune(api, "download", "7", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "lora.safetensors").read_bytes() == b"weights"
    assert not (tmp_path / "out" / "comfyui.safetensors").exists()
    fetched = api.seen("GET", "bucket.test/download/")
    assert len(fetched) == 1 and "Authorization" not in fetched[0].headers
    missing = attune(api, "download", "7", "--kind", "checkpoint", "-o", str(tmp_path))
    assert missing.exit_code == 1 and "it offers: comfyui, lora" in missing.output


def test_train_wait_follows_the_run_and_fails_when_the_run_fails(
    config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTUNE_URL", BASE)
    monkeypatch.setenv("ATTUNE_API_KEY", KEY)
    api = FakeApi()

    def run(status: str, step: int, **extra: Any) -> dict[str, Any]:
        progress = {"step": step, "total_steps": 4, "loss": 0.25, "eta_seconds": 3,
                    "queue_position": 1}  # fmt: skip
        return {"id": 7, "status": status, "progress": progress, "error": None,
                "gpu_seconds": {"reserved": 60, "used": 1.5}, **extra}  # fmt: skip

    api.run_polls = [run("queued", 0), run("running", 2), run("failed", 2, error="Out of memory.")]
    result = attune(api, "train", "--dataset", "1", "--family", "tiny-sd",
                    "--param", "steps=4", "--param", "caption_dropout=0.1", "--wait")  # fmt: skip
    assert result.exit_code == 1
    assert "Run 7 started (queued, 60 GPU-seconds reserved)" in result.output
    assert "Run 7 queued (position 1)" in result.output
    assert "step 2/4" in result.output and "loss 0.2500" in result.output
    assert "Run 7 failed: Out of memory." in result.output
    sent = api.seen("POST", "/trainings")[0]
    assert b'"parameters":{"steps":4,"caption_dropout":0.1}' in sent.content
    assert sent.headers["Idempotency-Key"]
    bad = attune(api, "train", "--dataset", "1", "--family", "tiny-sd", "--param", "steps")
    assert bad.exit_code == 2 and "NAME=VALUE" in bad.output
