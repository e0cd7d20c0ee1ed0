"""The optimisation loop: LoRA setup, one training step, periodic samples and checkpoints.

The step reads like karpathy/nanoGPT ``train.py``: batch, loss, backward, clip, step, zero.
Noise and caption dropout are seeded from (seed, step), so a resumed run repeats exactly the
steps an uninterrupted run would have taken. On CUDA nothing in a step waits for the GPU: the
loss is copied to the host without blocking and reported one step later (``PendingLoss``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.batches import BucketBatches
from training.cache import LatentCache, make_batch
from training.checkpoints import (
    list_checkpoints,
    load_checkpoint,
    load_lora_weights,
    read_state,
    save_checkpoint,
)
from training.config import TrainingConfig
from training.lora_params import (
    autocast,
    clip_gradients,
    flatten_lora,
    keep_lora_inputs,
    lean_lora_forward,
    step_only,
)
from training.models.base import Family, LoadedModel, SampleRequest, release_memory
from training.reporter import Reporter
from training.samples import write_sample

if TYPE_CHECKING:
    import torch

SAMPLES = "samples"


@dataclass
class TrainSession:
    """Everything the loop touches, in one place so it can be released at once."""

    config: TrainingConfig
    family: Family
    model: LoadedModel
    cache: LatentCache
    out_dir: Path
    reporter: Reporter
    params: list[torch.nn.Parameter]  # per denoiser, one flat fp32 parameter behind its LoRA
    optimizer: torch.optim.Optimizer
    lr_scheduler: Any
    batches: BucketBatches
    generator: torch.Generator
    start_step: int = 0
    resumed_from: int | None = None
    fingerprint: str = ""  # dataset fingerprint written into LoRA metadata
    checkpointing: bool = False
    last_loss: float | None = None
    samples: list[str] = field(default_factory=list)
    pending: PendingLoss | None = None  # the last step's loss, not yet reported
    saved_step: int | None = None  # the step of the newest checkpoint written or resumed from


@dataclass(frozen=True)
class PendingLoss:
    """A step's loss on its way to the host; ``ready`` is the CUDA event that marks it copied."""

    step: int
    value: torch.Tensor
    ready: Any = None


@dataclass(frozen=True)
class LoopOutcome:
    """How the loop ended."""

    steps_done: int
    stopped: bool


def add_lora(family: Family, model: LoadedModel, config: TrainingConfig) -> list[Any]:
    """Wrap each denoiser's target modules with a seeded LoRA; its flat fp32 parameter each."""
    import torch
    from peft import LoraConfig

    torch.manual_seed(config.seed)
    flats = []
    for denoiser in family.denoisers(model).values():
        denoiser.add_adapter(
            LoraConfig(
                r=config.rank,
                lora_alpha=config.alpha,
                init_lora_weights="gaussian",
                target_modules=family.lora_target_modules(),
            )
        )
        params = [p for p in denoiser.parameters() if p.requires_grad]
        if model.dtype != torch.float32:
            keep_lora_inputs(denoiser)  # the step runs under autocast instead
        lean_lora_forward(denoiser)
        denoiser.train()
        flats.append(flatten_lora(params))  # fp32 master weights even when the base is bf16
    return flats


def make_optimizer(params: list[Any], config: TrainingConfig, device: torch.device) -> Any:
    """Fused AdamW over the flat LoRA parameter (one kernel, CUDA and CPU) and the LR schedule."""
    import torch
    from diffusers.optimization import get_scheduler

    optimizer = torch.optim.AdamW(
        params,
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        eps=config.adam_epsilon,
        weight_decay=config.weight_decay,
        fused=device.type in ("cuda", "cpu"),
    )
    scheduler = get_scheduler(
        config.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=config.lr_warmup_steps,
        num_training_steps=config.steps,
    )
    return optimizer, scheduler


def resume_latest(session: TrainSession, start_from: Path | None = None) -> None:
    """Continue from the newest checkpoint in out_dir, if there is one.

    Else, with ``start_from`` (a checkpoint folder, chosen on purpose), begin a new run at
    step 0 from its LoRA weights only: new settings, optimizer and schedule.
    """
    found = list_checkpoints(session.out_dir)
    denoisers = session.family.denoisers(session.model)
    config = session.config.to_dict()
    if not found:
        if start_from is not None:
            load_lora_weights(start_from, denoisers, read_state(start_from)["config"], config)
            session.reporter.log(0, f"started from the LoRA weights of {start_from.name}")
        return
    resumed = load_checkpoint(
        found[-1], denoisers, session.optimizer, session.lr_scheduler, config, session.fingerprint
    )
    session.start_step = session.resumed_from = session.saved_step = resumed.step
    session.last_loss = resumed.loss
    session.reporter.log(resumed.step, f"resuming from the checkpoint at step {resumed.step}")


def run_loop(session: TrainSession, should_stop: Callable[[], bool] | None) -> LoopOutcome:
    """Train from start_step to config.steps; stop requests end it within one step."""
    config, reporter = session.config, session.reporter
    reporter.mark(session.start_step)
    for step in range(session.start_step, config.steps):
        if should_stop is not None and should_stop():
            report_loss(session)
            if session.saved_step != step:  # not when the last step just wrote one
                write_checkpoint(session, step)
            reporter.log(step, f"stopped on request at step {step}")
            return LoopOutcome(steps_done=step, stopped=True)
        advance(session, step)
    report_loss(session)
    return LoopOutcome(steps_done=max(session.start_step, config.steps), stopped=False)


def advance(session: TrainSession, step: int) -> int:
    """One optimizer step with its progress event, samples and checkpoint; the steps done.

    On CUDA the step's loss is reported after the next step has been queued, so the host
    never waits for the GPU between steps.
    """
    config = session.config
    loss = training_step(session, step)
    done = step + 1
    report_loss(session)
    session.pending = defer_loss(loss, done)
    if session.pending.ready is None:
        report_loss(session)
    due_sample = config.sample_every and (done % config.sample_every == 0 or done == config.steps)
    due_checkpoint = done == config.steps or (
        config.checkpoint_every and done % config.checkpoint_every == 0
    )
    if due_sample or due_checkpoint:
        report_loss(session)
    if due_sample:
        write_samples(session, done)
    if due_checkpoint:
        write_checkpoint(session, done)
    return done


def defer_loss(loss: torch.Tensor, step: int) -> PendingLoss:
    """Start copying the loss to the host; on CUDA without waiting for it."""
    import torch

    if loss.device.type != "cuda":
        return PendingLoss(step, loss)
    host = loss.to("cpu", non_blocking=True)
    ready = torch.cuda.Event()
    ready.record()
    return PendingLoss(step, host, ready)


def report_loss(session: TrainSession) -> None:
    """Emit the pending step event (waiting only for that step's loss), if there is one."""
    pending, session.pending = session.pending, None
    if pending is None:
        return
    if pending.ready is not None:
        pending.ready.synchronize()
    session.last_loss = float(pending.value)
    session.reporter.step(pending.step, session.last_loss)


def training_step(session: TrainSession, step: int) -> torch.Tensor:
    """One optimizer step; the detached loss. OOM under checkpointing 'auto' retries with it."""
    import torch

    try:
        return _optimizer_step(session, step)
    except torch.OutOfMemoryError:
        if session.checkpointing or session.config.gradient_checkpointing != "auto":
            raise
    session.optimizer.zero_grad(set_to_none=False)  # the gradient buffer stays (flat views)
    release_memory(session.model)
    enable_gradient_checkpointing(session)
    session.reporter.log(step, "out of memory: retrying with gradient checkpointing")
    return _optimizer_step(session, step)


def _optimizer_step(session: TrainSession, step: int) -> torch.Tensor:
    config, family = session.config, session.family
    indices = session.batches.batch_at(step)
    rng = random.Random(f"{config.seed}:caption-dropout:{step}")
    dropout = [rng.random() < config.caption_dropout for _ in indices]
    name = family.denoiser_at_step(step)
    batch = replace(make_batch(session.cache, indices, dropout), denoiser=name)
    session.generator.manual_seed(config.seed * 1_000_003 + step)
    with autocast(session.model):
        loss = family.training_loss(session.model, batch, session.generator)
    loss.backward()
    active = session.params[list(family.denoisers(session.model)).index(name)]
    if config.max_grad_norm:
        clip_gradients(active, config.max_grad_norm)
    step_only(session.optimizer, active, session.params)
    session.lr_scheduler.step()
    session.optimizer.zero_grad(set_to_none=False)  # one kernel; the views must stay
    return loss.detach()


def enable_gradient_checkpointing(session: TrainSession) -> None:
    """Trade compute for activation memory in the denoisers."""
    for denoiser in session.family.denoisers(session.model).values():
        denoiser.enable_gradient_checkpointing()
    session.checkpointing = True


def write_checkpoint(session: TrainSession, step: int) -> None:
    """Save and announce a checkpoint (resume state plus the LoRA in both download formats)."""
    from training.export import download_kinds, write_checkpoint_lora

    def lora_files(folder: Path) -> dict[str, str]:
        family, model, config = session.family, session.model, session.config
        written = write_checkpoint_lora(family, model, folder, config, step, session.fingerprint)
        return {kind: Path(path).name for kind, path in download_kinds(written).items()}

    path = save_checkpoint(
        session.out_dir,
        step,
        session.family.denoisers(session.model),
        session.optimizer,
        session.lr_scheduler,
        session.config.to_dict(),
        session.last_loss,
        session.config.keep_checkpoints,
        extra=lora_files,
        fingerprint=session.fingerprint,
    )
    session.saved_step = step
    session.reporter.emit("checkpoint", step, path=str(path))


def write_samples(session: TrainSession, step: int) -> list[Path]:
    """Render every sample prompt with its fixed seed to out_dir/samples/step-000050-<i>.png."""
    family, spec = session.family, session.family.spec
    folder = session.out_dir / SAMPLES
    folder.mkdir(parents=True, exist_ok=True)
    width, height, frames = sample_shape(session)
    written = []
    for index, embeds in enumerate(session.cache.sample_embeds):
        request = SampleRequest(
            embeds=embeds,
            negative_embeds=session.cache.embeds[0],
            seed=session.config.seed + index,
            steps=session.config.sample_steps,
            width=width,
            height=height,
            num_frames=frames,
        )
        with autocast(session.model):
            images = family.sample(session.model, request)
        stem = folder / f"step-{step:06d}-{index}"
        for path in write_sample(images, stem, spec.fps if spec.is_video else None):
            written.append(path)
            session.samples.append(str(path))
            session.reporter.emit("sample", step, path=str(path))
    return written


def sample_shape(session: TrainSession) -> tuple[int, int, int]:
    """(width, height, frames) of the most common training bucket."""
    counts: dict[tuple[int, int], int] = {}
    for item in session.cache.items:
        counts[item.bucket] = counts.get(item.bucket, 0) + 1
    width, height = max(counts, key=lambda b: (counts[b], b))
    video = session.family.spec.is_video
    frames = max((u.plan.frames or 1 for u in session.cache.used), default=1) if video else 1
    return width, height, frames
