"""Fixed-length prompt caches for families whose text encoders give variable-length prompts.

The trainer caches one row per prompt and concatenates rows into batches, so every cached
tensor needs one shape (``training.models.base``). Qwen-Image and Z-Image encode prompts to as
many tokens as the prompt has, and their transformers mask or drop the padding; here prompts
are zero-padded to a fixed length with a mask, and each training batch is cut back to its
longest prompt so the transformer never attends over (or pays for) the cache's padding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def pad_prompt_tokens(
    sequences: list[torch.Tensor], length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens_i, D) per prompt -> zero-padded (N, length, D) and a bool (N, length) mask.

    Prompts longer than ``length`` are cut, as the pipelines' max_sequence_length does.
    """
    import torch

    first = sequences[0]
    embeds = first.new_zeros(len(sequences), length, first.shape[-1])
    mask = torch.zeros(len(sequences), length, dtype=torch.bool, device=first.device)
    for row, tokens in enumerate(sequences):
        count = min(length, tokens.shape[0])
        embeds[row, :count] = tokens[:count]
        mask[row, :count] = True
    return embeds, mask


def valid_tokens(embeds: torch.Tensor, mask: torch.Tensor | None) -> list[torch.Tensor]:
    """The (tokens_i, D) rows a padded (N, L, D) batch holds; mask None = every token valid."""
    if mask is None:
        return list(embeds.unbind(0))
    return [row[keep.bool()] for row, keep in zip(embeds, mask, strict=True)]


def trim_to_longest(
    embeds: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Cut a padded batch to its longest prompt; the mask is None when no row has padding left.

    Valid tokens come first in each row. Reading the lengths waits for the GPU once per step,
    which costs nothing measurable at full size (the host stays ahead of the large kernels) and
    lets a batch of one run attention without a mask, on SDPA's fastest kernels.
    """
    lengths = mask.sum(dim=1).tolist()
    longest = max(1, max(lengths))
    trimmed = embeds[:, :longest]
    if min(lengths) == longest:
        return trimmed, None
    return trimmed, mask[:, :longest]
