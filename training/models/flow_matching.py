"""Rectified-flow training pieces shared by the flow-matching families (FLUX, Wan, LTX-2).

Adapted from diffusers v0.32 ``examples/dreambooth/train_dreambooth_lora_flux.py`` (noising
``(1 - sigma) * x + sigma * noise`` and the target ``noise - x``) and
``diffusers.training_utils.compute_density_for_timestep_sampling`` (logit-normal density).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def shift_sigmas(u: torch.Tensor, shift: float) -> torch.Tensor:
    """Shift sigmas in (0, 1) toward noise: shift * u / (1 + (shift - 1) * u).

    This is both Wan's fixed ``flow_shift`` and FLUX's ``time_shift(mu)`` with shift = e**mu.
    """
    return shift * u / (1.0 + (shift - 1.0) * u)


def sample_sigmas(
    batch_size: int, shift: float, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Logit-normal sigmas (mean 0, std 1), shifted; fp32 (batch_size,) in (0, 1)."""
    import torch

    logits = torch.randn(batch_size, generator=generator, device=device, dtype=torch.float32)
    return shift_sigmas(torch.sigmoid(logits), shift)


def sample_sigmas_between(
    batch_size: int,
    shift: float,
    low: float,
    high: float,
    generator: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """``sample_sigmas`` restricted to [low, high), the distribution's shape kept within it.

    musubi-tuner trains a Wan 2.2 expert on its range with ``--preserve_distribution_shape``
    (rejection sampling); this draws the same truncated distribution by inverse CDF, so every
    draw costs one random number and no loop.
    """
    import torch

    def normal_cdf_of_bound(sigma: float) -> float:
        if sigma <= 0.0:
            return 0.0
        if sigma >= 1.0:
            return 1.0
        u = sigma / (shift - (shift - 1.0) * sigma)  # undo shift_sigmas
        return 0.5 * (1.0 + math.erf(math.log(u / (1.0 - u)) / math.sqrt(2.0)))

    p_low, p_high = normal_cdf_of_bound(low), normal_cdf_of_bound(high)
    uniform = torch.rand(batch_size, generator=generator, device=device, dtype=torch.float64)
    quantile = (p_low + (p_high - p_low) * uniform).clamp(1e-12, 1.0 - 1e-12)
    sigmas = shift_sigmas(torch.sigmoid(torch.special.ndtri(quantile)), shift).float()
    # Bounds in fp32, the precision the sigmas are used at: rounding must not reach `high`.
    below_high = torch.nextafter(torch.tensor(high), torch.tensor(0.0)).item()
    return sigmas.clamp(low, below_high)


def resolution_shift(image_seq_len: int, scheduler_config: Any) -> float:
    """FLUX's resolution-dependent shift e**mu, mu linear in the packed image sequence length.

    The line through (base_image_seq_len, base_shift) and (max_image_seq_len, max_shift) is the
    one the scheduler uses at inference (diffusers ``calculate_shift``), so training sees the
    same noise levels the sampler will visit at that resolution.
    """
    base_len = scheduler_config.get("base_image_seq_len", 256)
    max_len = scheduler_config.get("max_image_seq_len", 4096)
    base_shift = scheduler_config.get("base_shift", 0.5)
    max_shift = scheduler_config.get("max_shift", 1.15)
    slope = (max_shift - base_shift) / (max_len - base_len)
    mu = base_shift + slope * (image_seq_len - base_len)
    return math.exp(mu)


def noisy_latents_and_target(
    latents: torch.Tensor, sigmas: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(1 - sigma) * x + sigma * noise, and the velocity target noise - x, both fp32."""
    import torch

    clean = latents.float()
    noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
    sigma = sigmas.view(-1, *([1] * (clean.ndim - 1)))
    return (1.0 - sigma) * clean + sigma * noise, noise - clean


def velocity_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error in fp32, averaged per item first as in the diffusers example."""
    per_item = (prediction.float() - target.float()).pow(2).reshape(target.shape[0], -1)
    return per_item.mean(dim=1).mean()
