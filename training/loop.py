"""The optimisation loop: LoRA setup, one training step, periodic samples and checkpoints.

The step reads like karpathy/nanoGPT ``train.py``: batch, loss, backward, clip, step, zero.
Noise and caption dropout are seeded from (seed, step), so a resumed run repeats exactly the
steps an uninterrupted run would have taken.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.batches import BucketBatches
from training.cache import LatentCache, make_batch, release_memory
from training.checkpoints import list_checkpoints, load_checkpoint, save_checkpoint
from training.config import TrainingConfig
from training.models.base import Family, LoadedModel, SampleRequest
from training.reporter import Reporter

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
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    lr_scheduler: Any
    batches: BucketBatches
    generator: torch.Generator
    start_step: int = 0
    resumed_from: int | None = None
    checkpointing: bool = False
    last_loss: float | None = None
    samples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LoopOutcome:
    """How the loop ended."""

    steps_done: int
    stopped: bool


def add_lora(family: Family, model: LoadedModel, config: TrainingConfig) -> list[Any]:
    """Wrap the family's target modules with a seeded LoRA; return its fp32 trainable params."""
    import torch
    from peft import LoraConfig

    torch.manual_seed(config.seed)
    denoiser = family.denoiser(model)
    denoiser.add_adapter(
        LoraConfig(
            r=config.rank,
            lora_alpha=config.alpha,
            init_lora_weights="gaussian",
            target_modules=family.lora_target_modules(),
        )
    )
    params = [p for p in denoiser.parameters() if p.requires_grad]
    for param in params:  # train the adapter in fp32 even when the base runs in bf16
        param.data = param.data.float()
    denoiser.train()
    return params


def make_optimizer(params: list[Any], config: TrainingConfig, device: torch.device) -> Any:
    """Fused AdamW (one kernel for all LoRA tensors, CUDA and CPU) and the LR schedule."""
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


def resume_latest(session: TrainSession) -> None:
    """Continue from the newest checkpoint in out_dir, if there is one."""
    found = list_checkpoints(session.out_dir)
    if not found:
        return
    resumed = load_checkpoint(
        found[-1],
        session.family.denoiser(session.model),
        session.optimizer,
        session.lr_scheduler,
        session.config.to_dict(),
    )
    session.start_step = session.resumed_from = resumed.step
    session.last_loss = resumed.loss
    session.reporter.log(resumed.step, f"resumed from checkpoint step {resumed.step}")


def run_loop(session: TrainSession, should_stop: Callable[[], bool] | None) -> LoopOutcome:
    """Train from start_step to config.steps; stop requests end it within one step."""
    config, reporter = session.config, session.reporter
    reporter.mark()
    for step in range(session.start_step, config.steps):
        if should_stop is not None and should_stop():
            write_checkpoint(session, step)
            reporter.log(step, f"stopped on request at step {step}")
            return LoopOutcome(steps_done=step, stopped=True)
        session.last_loss = training_step(session, step)
        done = step + 1
        reporter.step(done, session.last_loss)
        if config.sample_every and (done % config.sample_every == 0 or done == config.steps):
            write_samples(session, done)
        if done == config.steps or (
            config.checkpoint_every and done % config.checkpoint_every == 0
        ):
            write_checkpoint(session, done)
    return LoopOutcome(steps_done=max(session.start_step, config.steps), stopped=False)


def training_step(session: TrainSession, step: int) -> float:
    """One optimizer step; on CUDA OOM with gradient_checkpointing='auto', retry with it on."""
    import torch

    try:
        return _optimizer_step(session, step)
    except torch.OutOfMemoryError:
        if session.checkpointing or session.config.gradient_checkpointing != "auto":
            raise
    session.optimizer.zero_grad(set_to_none=True)
    release_memory(session.model)
    enable_gradient_checkpointing(session)
    session.reporter.log(step, "out of memory: retrying with gradient checkpointing")
    return _optimizer_step(session, step)


def _optimizer_step(session: TrainSession, step: int) -> float:
    import torch

    config = session.config
    indices = session.batches.batch_at(step)
    rng = random.Random(f"{config.seed}:caption-dropout:{step}")
    dropout = [rng.random() < config.caption_dropout for _ in indices]
    batch = make_batch(session.cache, indices, dropout)
    session.generator.manual_seed(config.seed * 1_000_003 + step)
    loss = session.family.training_loss(session.model, batch, session.generator)
    loss.backward()
    if config.max_grad_norm:
        torch.nn.utils.clip_grad_norm_(session.params, config.max_grad_norm, foreach=True)
    session.optimizer.step()
    session.lr_scheduler.step()
    session.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def enable_gradient_checkpointing(session: TrainSession) -> None:
    """Trade compute for activation memory in the denoiser."""
    session.family.denoiser(session.model).enable_gradient_checkpointing()
    session.checkpointing = True


def write_checkpoint(session: TrainSession, step: int) -> None:
    """Save and announce a checkpoint."""
    path = save_checkpoint(
        session.out_dir,
        step,
        session.family.denoiser(session.model),
        session.optimizer,
        session.lr_scheduler,
        session.config.to_dict(),
        session.last_loss,
        session.config.keep_checkpoints,
    )
    session.reporter.emit("checkpoint", step, path=str(path))
    session.reporter.pause_timing()


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
        images = family.sample(session.model, request)
        stem = folder / f"step-{step:06d}-{index}"
        if spec.is_video:
            from training import video

            path = video.write_mp4(images, stem.with_suffix(".mp4"), spec.fps or 16)
        else:
            path = stem.with_suffix(".png")
            images[0].save(path)
        written.append(path)
        session.samples.append(str(path))
        session.reporter.emit("sample", step, path=str(path))
    session.reporter.pause_timing()
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
