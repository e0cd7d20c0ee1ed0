"""Every family's tiny model can show learning, not just a falling loss curve.

A random tiny VAE gives latents of arbitrary scale (the SD layout's had a standard deviation of
0.06), and at that scale the denoising target is almost pure noise: a loss goes down whether or
not the image content is learned. So each tiny model is calibrated to roughly unit-variance
latents (tiny_parts.latent_statistics), and a short run at a high learning rate must lower the
denoising error on its own training images with the LoRA on, compared with the LoRA off, at the
same fixed noise and timesteps. One module over all families to keep CI time small.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.training_data import TEST_RESOLUTION, write_image
from training.cache import cache_latents, make_batch
from training.config import TrainingConfig
from training.data.dataset import prepare_data
from training.loop import TrainSession, training_step
from training.models import FAMILY_NAMES, get_family
from training.reporter import Reporter
from training.trainer import load_family, start_session

STEPS = 8
RANK = 4
LEARNING_RATE = 5e-2
FIXED_DRAWS = 16  # seeded (noise, timestep) draws, one batch
MAX_ERROR_RATIO = 0.96  # the LoRA must take at least 4% off the error


@pytest.fixture(scope="module", params=FAMILY_NAMES)
def session(
    request: pytest.FixtureRequest,
    tiny_model: Callable[[str], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> TrainSession:
    """A fresh LoRA session on one family's tiny model and one training image."""
    family = request.param
    return _short_session(family, tiny_model(family), tmp_path_factory.mktemp(family))


def test_tiny_model_latents_have_roughly_unit_variance(session: TrainSession) -> None:
    latents = session.cache.items[0].latents  # a training image, not a calibration one
    assert 0.7 < latents.std().item() < 1.4
    assert latents.pow(2).mean().sqrt().item() < 1.5  # SD's layout has no shift: the mean stays


def test_a_short_run_lowers_the_denoising_error_on_its_training_images(
    session: TrainSession,
) -> None:
    for step in range(STEPS):
        training_step(session, step)
    with_lora = _denoising_errors(session)
    with _lora_disabled(session):
        without_lora = _denoising_errors(session)
    for denoiser, error in with_lora.items():
        ratio = error / without_lora[denoiser]
        assert ratio < MAX_ERROR_RATIO, f"{denoiser or 'denoiser'}: error x{ratio:.3f}"


def _short_session(family: str, base_model: Path, tmp_path: Path) -> TrainSession:
    """A seeded LoRA session on one small still, its latents cached, nothing trained yet.

    The image is half the smallest resolution on each side (the least the bucketing keeps), but
    at least 64 px: at 32 px tiny SD's latents are 4x4, too few to learn anything in a few steps.
    """
    import torch

    resolution = TEST_RESOLUTION.get(family, get_family(family).spec.min_resolution)
    side = max(resolution // 2, 64)
    data = tmp_path / "data"
    write_image(data / "img.png", side, side, seed=1)
    (data / "img.txt").write_text("a photo of sks dog", encoding="utf-8")
    config = TrainingConfig(
        family=family,
        base_model=str(base_model),
        steps=STEPS,
        rank=RANK,
        alpha=RANK,
        learning_rate=LEARNING_RATE,
        resolution=resolution,
        trigger_word="sks",
        caption_dropout=0.0,
        checkpoint_every=0,
        mixed_precision="fp32",
    )
    family_impl, model = load_family(config, torch.device("cpu"))
    cache = cache_latents(family_impl, model, prepare_data(config, data), [])
    reporter = Reporter(config.steps, None)
    return start_session(config, family_impl, model, cache, tmp_path / "out", reporter)


def _denoising_errors(session: TrainSession) -> dict[str, float]:
    """Per denoiser: the training loss on the image at FIXED_DRAWS seeded noise/timesteps."""
    import torch

    family, model = session.family, session.model
    repeated = make_batch(session.cache, [0] * FIXED_DRAWS, [False] * FIXED_DRAWS)
    generator = torch.Generator(model.device)
    errors = {}
    for denoiser in family.denoisers(model):
        generator.manual_seed(0)
        with torch.no_grad():
            loss = family.training_loss(model, replace(repeated, denoiser=denoiser), generator)
        errors[denoiser] = float(loss)
    return errors


@contextmanager
def _lora_disabled(session: TrainSession) -> Iterator[None]:
    denoisers = session.family.denoisers(session.model).values()
    for denoiser in denoisers:
        denoiser.disable_adapters()
    try:
        yield
    finally:
        for denoiser in denoisers:
            denoiser.enable_adapters()
