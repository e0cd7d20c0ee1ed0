"""Calibrating the tiny random video VAEs (Wan 2.2, LTX-2) like trained ones.

A random VAE's latents have an arbitrary scale; real checkpoints publish per-channel
statistics that bring them to about unit variance, the scale noise is drawn at. The tiny
models measure theirs on a clip of ``tiny_parts.calibration_pixels`` frames (photo-like,
changing from frame to frame) and store them the way the real configs do, so training on a
tiny model sees the same signal-to-noise balance as on the real one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def calibration_clip(frames: int, side: int) -> torch.Tensor:
    """(1, 3, frames, side, side) in [-1, 1]: calibration_pixels images as consecutive frames."""
    from training.models.tiny_parts import calibration_pixels

    return calibration_pixels(frames, side).transpose(0, 1).unsqueeze(0)


def channel_statistics(latents: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of (B, C, ...) latents, rounded for configs."""
    flat = latents.transpose(0, 1).reshape(latents.shape[1], -1).double()
    mean = [round(float(v), 4) for v in flat.mean(dim=1)]
    std = [round(max(float(v), 1e-3), 4) for v in flat.std(dim=1)]
    return mean, std
