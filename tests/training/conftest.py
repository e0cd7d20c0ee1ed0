"""Fixtures for the training engine: tiny models built once per session, small image datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.training_data import TEST_RESOLUTION, write_image
from training.config import TrainingConfig


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """tiny_model(family) -> folder holding that family's tiny random pipeline (built once)."""
    from training.models import make_tiny

    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = make_tiny(family, tmp_path_factory.mktemp(f"tiny-{family}"))
        return built[family]

    return get


@pytest.fixture
def image_dataset(tmp_path: Path) -> Callable[..., Path]:
    """image_dataset(sizes, captions=None) -> a folder of PNGs (and .txt captions)."""

    def build(sizes: list[tuple[int, int]], captions: dict[int, str] | None = None) -> Path:
        folder = tmp_path / "data"
        for index, (width, height) in enumerate(sizes):
            write_image(folder / f"img{index}.png", width, height, seed=index)
        for index, text in (captions or {}).items():
            (folder / f"img{index}.txt").write_text(text, encoding="utf-8")
        folder.mkdir(exist_ok=True)
        return folder

    return build


@pytest.fixture
def tiny_config(tiny_model: Callable[[str], Path]) -> Callable[..., TrainingConfig]:
    """tiny_config(family='tiny-sd', **fields) -> a fast TrainingConfig on the tiny model."""

    def build(family: str = "tiny-sd", **fields: object) -> TrainingConfig:
        values: dict[str, object] = {
            "family": family,
            "base_model": str(tiny_model(family)),
            "steps": 3,
            "rank": 4,
            "learning_rate": 1e-3,
            "resolution": TEST_RESOLUTION[family],
            "trigger_word": "sks",
            "caption_dropout": 0.0,
            "checkpoint_every": 0,
            "sample_steps": 2,
            "mixed_precision": "fp32",
        }
        values.update(fields)
        return TrainingConfig(**values)  # type: ignore[arg-type]

    return build
