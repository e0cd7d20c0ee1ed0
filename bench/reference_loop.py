"""The reference training loop: the diffusers DreamBooth LoRA example recipe, on our families.

Mirrors ``examples/dreambooth/train_dreambooth_lora.py`` / ``..._sdxl.py`` / ``..._flux.py``
(diffusers 0.3x-0.42) step for step: the dataloader decodes, resizes and crops each image
(``num_workers=0``, the example's default), the VAE encodes it and the text encoders encode
the caption every step, the loss is the same as ours, LoRA parameters are fp32
(``cast_training_params``), the optimizer is a plain ``torch.optim.AdamW``, gradients are
clipped, and the progress bar reads ``loss.detach().item()`` each step. The model forward
itself is the family's ``training_loss``, so both loops compute the identical loss.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class ReferenceLoop:
    """State of the reference loop."""

    config: Any
    family: Any
    model: Any
    items: list[Any]  # PreparedItem, in BucketBatches index order
    batches: Any
    params: list[Any]
    optimizer: Any
    lr_scheduler: Any
    generator: Any
    adapter: str
    checkpointing: bool = False  # turned on after an out-of-memory step, as a user would

    def activate(self) -> None:
        """Make this loop's adapter the active one (matters when the denoiser is shared).

        Also turns PEFT's cast of LoRA inputs to fp32 back on: the example's fp32 LoRA math
        (our loop switches it off and uses autocast instead).
        """
        from peft.tuners.tuners_utils import BaseTunerLayer

        for denoiser in self.family.denoisers(self.model).values():
            if len(getattr(denoiser, "peft_config", {})) > 1:
                denoiser.set_adapter(self.adapter)
                for module in denoiser.modules():
                    if isinstance(module, BaseTunerLayer):
                        module.cast_input_dtype_enabled = True

    def step(self, step: int) -> float:
        """One example-recipe step; out of memory, retry with --gradient_checkpointing on."""
        import torch

        try:
            return self._step(step)
        except torch.OutOfMemoryError:
            if self.checkpointing:
                raise
        self.optimizer.zero_grad()
        torch.cuda.empty_cache()
        for denoiser in self.family.denoisers(self.model).values():
            denoiser.enable_gradient_checkpointing()
        self.checkpointing = True
        return self._step(step)

    def _step(self, step: int) -> float:
        """The example's step; returns loss.item() as its progress bar does."""
        import torch

        from training.cache import cached_item
        from training.data.media import load_pixels
        from training.models.base import LatentBatch

        config, family, model = self.config, self.family, self.model
        chosen = [self.items[i] for i in self.batches.batch_at(step)]
        rng = random.Random(f"{config.seed}:caption-dropout:{step}")
        captions = ["" if rng.random() < config.caption_dropout else i.caption for i in chosen]
        pixels = torch.stack([load_pixels(item, family.spec) for item in chosen])
        latents = family.encode_media(model, pixels)
        embeds = family.encode_prompts(model, captions)
        sizes = [cached_item(item, latent, 0) for item, latent in zip(chosen, latents, strict=True)]
        batch = LatentBatch(
            latents=latents,
            embeds=embeds,
            original_sizes=tuple(s.original_size for s in sizes),
            crop_top_lefts=tuple(s.crop_top_left for s in sizes),
            # Several denoisers (Wan 2.2 A14B): the same turn-taking as ours; the idle one's
            # gradients stay None after zero_grad, so plain AdamW skips it as well.
            denoiser=family.denoiser_at_step(step),
        )
        self.generator.manual_seed(config.seed * 1_000_003 + step)
        loss = family.training_loss(model, batch, self.generator)
        loss.backward()
        if config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.params, config.max_grad_norm)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad()
        return loss.detach().item()


def build_reference(
    config: Any, family: Any, model: Any, prepared: Any, adapter: str
) -> ReferenceLoop:
    """Add an fp32 LoRA adapter with the same targets and rank; plain AdamW and LR schedule."""
    import torch
    from diffusers.optimization import get_scheduler
    from peft import LoraConfig

    from training.batches import BucketBatches

    torch.manual_seed(config.seed)
    params = []
    for denoiser in family.denoisers(model).values():
        lora = LoraConfig(
            r=config.rank,
            lora_alpha=config.alpha,
            init_lora_weights="gaussian",
            target_modules=family.lora_target_modules(),
        )
        denoiser.add_adapter(lora, adapter_name=adapter)
        denoiser.set_adapter(adapter)
        denoiser.train()
        params += [p for n, p in denoiser.named_parameters() if f".{adapter}." in n]
    for param in params:  # cast_training_params(unet, dtype=torch.float32)
        param.data = param.data.float()
    optimizer = torch.optim.AdamW(
        params,
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        weight_decay=config.weight_decay,
        eps=config.adam_epsilon,
    )
    scheduler = get_scheduler(
        config.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=config.lr_warmup_steps,
        num_training_steps=config.steps,
    )
    items = list(prepared.items)
    buckets = [(i.plan.bucket_width, i.plan.bucket_height, i.plan.frames or 1) for i in items]
    return ReferenceLoop(
        config=config,
        family=family,
        model=model,
        items=items,
        batches=BucketBatches(buckets, config.batch_size, config.seed),
        params=params,
        optimizer=optimizer,
        lr_scheduler=scheduler,
        generator=torch.Generator(model.device),
        adapter=adapter,
    )


def write_dataset(folder: Path, spec: Any, count: int, side: int, frames: int) -> Path:
    """count square PNGs (or mp4 clips of frames at spec.fps) of side px, with captions."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side]
    for index in range(count):
        stem = folder / f"item{index}"
        stem.with_suffix(".txt").write_text(f"photo of [trigger] dog, view {index}", "utf-8")
        gradient = np.stack([x * 255 // side, y * 255 // side, (x + y + 40 * index) % 256], -1)
        noise = rng.integers(0, 40, size=(side, side, 3))
        base = np.clip(gradient + noise, 0, 255).astype(np.uint8)  # photo-like: smooth + grain
        if not spec.is_video:
            Image.fromarray(base).save(stem.with_suffix(".jpg"), quality=90)
            continue
        from training import video

        clip = [Image.fromarray(np.roll(base, 4 * f, axis=1)) for f in range(frames + 1)]
        video.write_mp4(clip, stem.with_suffix(".mp4"), spec.fps or 16)
    return folder
