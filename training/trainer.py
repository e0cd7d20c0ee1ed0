"""train(): the whole run as a table of contents.

prepare_data -> load_family -> cache_latents -> start_session (LoRA, optimizer, resume)
-> run_loop -> export. Each piece is importable on its own so a benchmark can time it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from catalogue.prompts import fill_trigger
from training.cache import LatentCache, cache_latents
from training.checkpoints import list_checkpoints
from training.config import TrainingConfig
from training.data.captions import write_captions_file
from training.data.dataset import PreparedItem, dataset_fingerprint, prepare_data
from training.errors import TrainingOutOfMemory
from training.export import (
    ExportedFiles,
    download_kinds,
    expected_deltas,
    lora_metadata,
    lora_state_dict,
    verify_lora_files,
    write_lora_files,
)
from training.loop import (
    TrainSession,
    add_lora,
    enable_gradient_checkpointing,
    make_optimizer,
    resume_latest,
    run_loop,
)
from training.models import get_family
from training.models.base import Family, LoadedModel, release_memory
from training.reporter import Reporter
from training.results import ProgressEvent, TrainResult

if TYPE_CHECKING:
    import torch

CAPTIONS = "captions.txt"  # the captions each used item trained with, for the person to check


def train(
    config: TrainingConfig,
    data_dir: str | Path,
    out_dir: str | Path,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    start_from: str | Path | None = None,
) -> TrainResult:
    """Train a LoRA on data_dir into out_dir; resumes from out_dir's latest checkpoint.

    A resume refuses (ResumeMismatch) a checkpoint trained with other settings or data; only
    more steps may be asked for. ``start_from`` (a checkpoint folder) starts a new run from
    that checkpoint's LoRA weights on purpose, with this config, when out_dir has none.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reporter = Reporter(config.steps, on_progress)
    data = prepare_data(config, Path(data_dir))
    for skip in data.skipped:
        reporter.skipped(skip)
    with out_of_memory_as_error(config):
        family, model = load_family(config)
        prompts = [fill_trigger(p, config.trigger_word) for p in config.sample_prompts]
        cache = cache_latents(family, model, data, prompts, reporter.skipped)
        captions = record_captions(cache.used, out_dir, reporter)
        start = Path(start_from) if start_from is not None else None
        session = start_session(config, family, model, cache, out_dir, reporter, start)
        outcome = run_loop(session, should_stop)
        fingerprint = session.fingerprint
        exported = [] if outcome.stopped else export(session, outcome.steps_done, fingerprint)
    result = TrainResult(
        steps_done=outcome.steps_done,
        total_steps=config.steps,
        final_loss=session.last_loss,
        stopped=outcome.stopped,
        seconds=round(reporter.elapsed(), 3),
        lora_path=str(exported[0].diffusers) if exported else None,
        comfyui_path=str(exported[0].comfyui) if exported else None,
        lora_files=download_kinds(exported),
        samples=session.samples,
        checkpoints=[str(p) for p in list_checkpoints(out_dir)],
        skipped=data.skipped + cache.skipped,
        resumed_from=session.resumed_from,
        seconds_per_step=reporter.seconds_per_step(),
        dataset_fingerprint=fingerprint,
        captions_path=str(captions),
    )
    reporter.emit("done", outcome.steps_done, loss=session.last_loss, path=result.lora_path)
    return result


def record_captions(used: list[PreparedItem], out_dir: Path, reporter: Reporter) -> Path:
    """Write the captions the run trains to out_dir/captions.txt and say so in the log once."""
    path = write_captions_file([(item.name, item.caption) for item in used], out_dir / CAPTIONS)
    distinct = len({item.caption for item in used})
    reporter.log(0, f"training {len(used)} items on {distinct} distinct captions ({CAPTIONS})")
    return path


def pick_device() -> torch.device:
    """The first CUDA device when there is one, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def precision_dtype(mixed_precision: str, device: torch.device) -> torch.dtype:
    """The frozen weights' dtype for a mixed_precision setting ('auto', 'bf16' or 'fp32').

    'auto' is bf16 on GPUs that support it and fp32 elsewhere; explicit settings win.
    """
    import torch

    if mixed_precision == "fp32":
        return torch.float32
    if mixed_precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_family(
    config: TrainingConfig, device: torch.device | None = None
) -> tuple[Family, LoadedModel]:
    """Resolve the family, load its frozen pipeline on device (default: the fastest), ready it.

    Attention runs through PyTorch SDPA (diffusers' default processor); TF32 matmuls on CUDA.
    """
    device = device or pick_device()
    prepare_backends(device)
    family = get_family(config.family)
    model = family.load(
        config.base_model,
        dtype=precision_dtype(config.mixed_precision, device),
        device=device,
        quantize=config.quantize,
    )
    family.prepare_training(model, config.training_adapter)
    return family, model


def prepare_backends(device: torch.device) -> None:
    """Silence per-component progress bars; allow TF32 matmuls and convolutions on CUDA."""
    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()  # per-component bars only clutter worker logs
    transformers_logging.disable_progress_bar()
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def start_session(
    config: TrainingConfig,
    family: Family,
    model: LoadedModel,
    cache: LatentCache,
    out_dir: Path,
    reporter: Reporter,
    start_from: Path | None = None,
) -> TrainSession:
    """Add the LoRA, build the optimizer, apply speed settings and resume if possible."""
    import torch

    from training.batches import BucketBatches

    params = add_lora(family, model, config)
    optimizer, scheduler = make_optimizer(params, config, model.device)
    buckets = [tuple(item.latents.shape) for item in cache.items]  # batch equal shapes only
    session = TrainSession(
        config=config,
        family=family,
        model=model,
        cache=cache,
        out_dir=out_dir,
        reporter=reporter,
        params=params,
        optimizer=optimizer,
        lr_scheduler=scheduler,
        batches=BucketBatches(buckets, config.batch_size, config.seed),
        generator=torch.Generator(model.device),
        fingerprint=dataset_fingerprint(cache.used),
    )
    if config.gradient_checkpointing is True:
        enable_gradient_checkpointing(session)
    if config.compile:
        family.compile_denoiser(model)
    resume_latest(session, start_from)
    return session


def export(session: TrainSession, steps_done: int, fingerprint: str) -> list[ExportedFiles]:
    """Write both LoRA files of each denoiser, free the model, verify them in a fresh one."""
    config, family, model = session.config, session.family, session.model
    written = []
    for denoiser in family.denoisers(model):
        state = lora_state_dict(family, model, denoiser)
        metadata = lora_metadata(config, steps_done, fingerprint, denoiser)
        files = ExportedFiles.final(session.out_dir, config.output_name, denoiser)
        write_lora_files(family, model, state, files, config, metadata)
        written.append((files, expected_deltas(state, float(config.alpha), config.rank)))
    dtype, device = model.dtype, model.device
    model.pipeline = None  # drop the trained weights before loading a second copy
    release_memory(model)
    fresh = family.load(
        config.base_model,
        dtype=dtype,
        device=device,
        text_encoders=False,
        quantize=config.quantize,  # the check must fit the same GPU as the run
    )
    for files, expected in written:
        verify_lora_files(family, fresh, files, expected)
        session.reporter.log(
            steps_done, f"exported {files.diffusers.name} and {files.comfyui.name}"
        )
    return [files for files, _ in written]


@contextmanager
def out_of_memory_as_error(config: TrainingConfig) -> Iterator[None]:
    """Turn the accelerator's OOM into TrainingOutOfMemory with advice."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError as exc:
        raise TrainingOutOfMemory(
            f"the GPU ran out of memory training {config.family} at resolution "
            f"{config.resolution} with batch size {config.batch_size} and rank {config.rank}; "
            "lower batch_size, resolution or rank, or set gradient_checkpointing to true"
        ) from exc
