"""Offline pieces for the tiny random video pipelines (Wan 2.2, LTX-2): a calibration clip.

A random VAE's latents have an arbitrary scale; real checkpoints publish per-channel
statistics that bring them to about unit variance, the scale noise is drawn at. The tiny
models measure theirs on a fixed photo-like clip and store them the way the real configs do,
so training on a tiny model sees the same signal-to-noise balance as on the real one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def calibration_clip(frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """(1, 3, frames, height, width) in [-1, 1]: a drifting colour gradient with grain."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    y = torch.linspace(-1.0, 1.0, height).view(1, height, 1)
    x = torch.linspace(-1.0, 1.0, width).view(1, 1, width)
    clip = []
    for frame in range(frames):
        shift = 0.1 * frame
        red = (x + shift).clamp(-1, 1).expand(1, height, width)
        green = y.expand(1, height, width)
        blue = ((x + y) / 2 - shift).clamp(-1, 1)
        grain = 0.2 * torch.rand(3, height, width, generator=generator) - 0.1
        clip.append(torch.cat([red, green, blue]) + grain)
    return torch.stack(clip, dim=1).unsqueeze(0).clamp(-1, 1)


def channel_statistics(latents: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of (B, C, ...) latents, rounded for configs."""
    flat = latents.transpose(0, 1).reshape(latents.shape[1], -1).double()
    mean = [round(float(v), 4) for v in flat.mean(dim=1)]
    std = [round(max(float(v), 1e-3), 4) for v in flat.std(dim=1)]
    return mean, std
