"""Bad input fails with a typed error naming the field or file; one bad file is only skipped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.training_data import write_image
from training import ProgressEvent, TrainingConfig, get_family, train
from training.errors import DatasetError, ExportError, ModelLoadError, TrainingOutOfMemory


def test_empty_dataset_is_a_dataset_error(
    tmp_path: Path, tiny_config: Callable[..., TrainingConfig]
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "orphan.txt").write_text("a caption without an image")
    with pytest.raises(DatasetError, match="empty"):
        train(tiny_config(), tmp_path / "data", tmp_path / "out")


def test_missing_dataset_folder_is_a_dataset_error(
    tmp_path: Path, tiny_config: Callable[..., TrainingConfig]
) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        train(tiny_config(), tmp_path / "nowhere", tmp_path / "out")


def test_nothing_usable_names_the_files_and_reasons(
    tmp_path: Path, tiny_config: Callable[..., TrainingConfig]
) -> None:
    data = tmp_path / "data"
    write_image(data / "speck.png", 8, 8)
    (data / "junk.jpg").write_bytes(b"not an image")
    with pytest.raises(DatasetError) as caught:
        train(tiny_config(), data, tmp_path / "out")
    message = str(caught.value)
    assert "nothing usable" in message
    assert "speck.png: too small" in message and "junk.jpg: unreadable" in message


def test_corrupt_files_among_good_ones_are_skipped_and_reported(
    tmp_path: Path,
    image_dataset: Callable[..., Path],
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    data = image_dataset([(64, 64), (64, 64)])
    (data / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    good = write_image(tmp_path / "whole.jpg", 128, 128).read_bytes()
    (data / "truncated.jpg").write_bytes(good[: len(good) // 2])  # header fine, pixels cut
    events: list[ProgressEvent] = []
    result = train(tiny_config(steps=2), data, tmp_path / "out", on_progress=events.append)
    skipped = {s.file: s.reason for s in result.skipped}
    assert set(skipped) == {"garbage.png", "truncated.jpg"}
    assert "unreadable" in skipped["garbage.png"]
    assert "does not decode" in skipped["truncated.jpg"]
    logs = " ".join(e.message or "" for e in events if e.kind == "log")
    assert "skipped garbage.png" in logs and "skipped truncated.jpg" in logs
    assert result.steps_done == 2 and result.lora_path


def test_missing_base_model_is_a_model_load_error(
    tmp_path: Path,
    image_dataset: Callable[..., Path],
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    data = image_dataset([(64, 64)])
    config = tiny_config(base_model=str(tmp_path / "no-such-model"))
    with pytest.raises(ModelLoadError, match="no-such-model"):
        train(config, data, tmp_path / "out")


def test_out_of_memory_becomes_a_clear_error(
    tmp_path: Path,
    image_dataset: Callable[..., Path],
    tiny_config: Callable[..., TrainingConfig],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    def out_of_memory(*args: object) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(get_family("tiny-sd"), "training_loss", out_of_memory)
    with pytest.raises(TrainingOutOfMemory, match="lower batch_size"):
        train(tiny_config(), image_dataset([(64, 64)]), tmp_path / "out")


def test_first_out_of_memory_retries_with_gradient_checkpointing(
    tmp_path: Path,
    image_dataset: Callable[..., Path],
    tiny_config: Callable[..., TrainingConfig],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    family = get_family("tiny-sd")
    real_loss = family.training_loss
    calls: list[int] = []

    def oom_once(*args: object) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real_loss(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(family, "training_loss", oom_once)
    events: list[ProgressEvent] = []
    result = train(tiny_config(steps=2), image_dataset([(64, 64)]), tmp_path / "out", events.append)
    assert result.steps_done == 2
    assert any("gradient checkpointing" in (e.message or "") for e in events)


def test_export_fails_when_a_file_leaves_weights_unloaded(
    tmp_path: Path,
    image_dataset: Callable[..., Path],
    tiny_config: Callable[..., TrainingConfig],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    family = get_family("tiny-sd")
    real_to_kohya = family.to_kohya
    dropped = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"

    def lossy_to_kohya(state: dict, alpha: float) -> dict:
        return {k: v for k, v in real_to_kohya(state, alpha).items() if not k.startswith(dropped)}

    monkeypatch.setattr(family, "to_kohya", lossy_to_kohya)
    with pytest.raises(ExportError) as caught:
        train(tiny_config(steps=1), image_dataset([(64, 64)]), tmp_path / "out")
    assert "_comfyui.safetensors" in str(caught.value)
    assert caught.value.unloaded_keys == [
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    ]


def test_a_verification_failure_without_a_message_still_says_what_failed() -> None:
    """diffusers' converters fail with bare asserts; the export error must not read "...: "."""
    from training.export import describe

    try:
        raise AssertionError  # what a converter's bare assert raises outside pytest
    except AssertionError as exc:
        text = describe(exc)
    assert text.startswith("AssertionError at test_errors.py:")
    assert describe(ValueError("widths differ")) == "widths differ"
