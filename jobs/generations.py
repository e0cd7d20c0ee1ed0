"""Try it: render a prompt with a run's LoRA and store the result as generated media."""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

from app import object_keys
from app.accounts.services import account_is_leaving
from app.billing.overage import record_gpu_usage
from app.db_types import utcnow
from app.extensions import db, get_settings, get_storage
from app.trainings.models import Generation, TrainingRun
from jobs.base_models import resolve_base_model
from jobs.context import app_context, job_logger
from jobs.outcomes import PLATFORM_MESSAGE, engine_outcome

SAMPLE_STEPS = 20
RENDER_PLATFORM_MESSAGE = "Rendering failed on our side; you are not charged for it."


def run(generation_id: int) -> str:
    """Render one generation; safe to run twice (a finished one is left alone)."""
    with app_context():
        generation = db.session.get(Generation, generation_id)
        if generation is None or generation.status not in ("queued", "running"):
            return "skipped"
        if account_is_leaving(generation.user_id):
            return _cancel(generation)
        log = job_logger(__name__, f"generation {generation_id}")
        training_run = db.session.get(TrainingRun, generation.run_id)
        generation.status = "running"
        db.session.commit()
        started, clock = utcnow(), time.monotonic()
        scratch = Path(tempfile.mkdtemp(prefix="attune-generate-", dir=_scratch_root()))
        try:
            generation.media_keys = _render(generation, training_run, scratch)
            generation.status = "succeeded" if generation.media_keys else "cancelled"
        except Exception as exc:
            db.session.rollback()
            log.exception("failed")
            outcome = engine_outcome(exc)
            generation.status = "failed"
            generation.error = (
                RENDER_PLATFORM_MESSAGE if outcome.error == PLATFORM_MESSAGE else outcome.error
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        seconds = time.monotonic() - clock
        generation.gpu_seconds, generation.finished_at = seconds, utcnow()
        db.session.commit()
        _meter(generation, started, seconds, charged=generation.status == "succeeded")
        return generation.status


def _cancel(generation: Generation) -> str:
    """Its owner is deleting the account: render nothing, store nothing."""
    generation.status, generation.finished_at = "cancelled", utcnow()
    db.session.commit()
    return "cancelled"


def _scratch_root() -> Path:
    root = get_settings().scratch_dir
    root.mkdir(parents=True, exist_ok=True)
    return root


def _download_loras(training_run: TrainingRun, scratch: Path) -> Path | dict[str, Path]:
    """The run's LoRA file, or one per denoiser for families with several (Wan 2.2 A14B)."""
    storage, loras = get_storage(), {}
    for kind, key in training_run.artifacts.items():
        if kind.startswith("lora_"):  # lora_<denoiser>
            loras[kind.removeprefix("lora_")] = scratch / f"{kind}.safetensors"
            storage.download_file(key, loras[kind.removeprefix("lora_")])
    if loras:
        return loras
    lora = scratch / "lora.safetensors"
    storage.download_file(training_run.artifacts["lora"], lora)
    return lora


def _render(generation: Generation, training_run: TrainingRun, scratch: Path) -> list[str]:
    """Download the LoRA, render, write png (or mp4 + webp for clips) and upload them."""
    from training import generate, get_family
    from training.samples import CONTENT_TYPES, write_sample

    storage = get_storage()
    loras = _download_loras(training_run, scratch)
    config = training_run.config
    outputs = generate(
        training_run.family,
        resolve_base_model(training_run.family),
        loras,
        [generation.prompt],
        strength=generation.strength,
        seed=generation.seed,
        steps=SAMPLE_STEPS,
        resolution=config.get("resolution"),
        quantize=config.get("quantize", "none"),  # as the run loaded its base
    )
    if account_is_leaving(generation.user_id):
        return []  # the erasure waits for this job; nothing may land under its prefix
    spec = get_family(training_run.family).spec
    fps = (spec.fps or 16) if spec.is_video else None
    keys = []
    for index, frames in enumerate(outputs):
        stem = scratch / f"{'clip' if fps else 'image'}-{index}"
        for path in write_sample(frames, stem, fps):
            key = object_keys.child(generation.storage_prefix(), path.name)
            storage.upload_file(key, path, CONTENT_TYPES[path.suffix])
            keys.append(key)
    return keys


def _meter(generation: Generation, started: datetime, seconds: float, charged: bool) -> None:
    """One ledger segment per generation; a retried write is ignored."""
    segment = f"generation:{generation.id}"
    record_gpu_usage(
        generation.user_id, generation.run_id, segment, "generation", seconds, charged, started
    )  # fmt: skip
