"""Latent and text-embedding cache: encode everything once, then free the encoders.

Caching is the main speed lever over the diffusers example recipe, which runs the VAE and the
text encoders on every step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from training.data.dataset import PreparedData, PreparedItem, nothing_usable_message
from training.data.media import load_pixels
from training.errors import DatasetError
from training.models.base import Family, LatentBatch, LoadedModel, PromptEmbeds, release_memory
from training.results import SkippedFile

if TYPE_CHECKING:
    import torch

ENCODE_CHUNK = 8  # items per VAE / text-encoder call while caching


@dataclass
class CachedItem:
    """One training example: latents on the device plus what conditioning needs."""

    name: str
    latents: torch.Tensor  # (C, h, w) or (C, F, h, w)
    embed_index: int  # row of LatentCache.embeds
    original_size: tuple[int, int]  # (height, width) of the source
    crop_top_left: tuple[int, int]  # (top, left) of the crop, in resized-source pixels
    bucket: tuple[int, int]  # (width, height)


@dataclass
class LatentCache:
    """Everything the loop needs; index 0 of embeds is the empty prompt (caption dropout)."""

    items: list[CachedItem]
    embeds: list[PromptEmbeds]
    sample_embeds: list[PromptEmbeds]
    skipped: list[SkippedFile] = field(default_factory=list)
    used: list[PreparedItem] = field(default_factory=list)


def cache_latents(
    family: Family,
    model: LoadedModel,
    data: PreparedData,
    sample_prompts: list[str],
    on_skip: Callable[[SkippedFile], None] | None = None,
) -> LatentCache:
    """Encode prompts and media once, free text encoders and VAE encoder, return the cache."""
    captions = sorted({item.caption for item in data.items})
    table = encode_prompt_table(family, model, ["", *captions, *sample_prompts])
    caption_rows = {caption: i + 1 for i, caption in enumerate(captions)}
    sample_embeds = table[1 + len(captions) :]
    items, skipped, used = encode_items(family, model, data.items, caption_rows, on_skip)
    family.free_encoders(model)
    release_memory(model)
    if not items:
        raise DatasetError(nothing_usable_message(data.skipped + skipped))
    return LatentCache(items, table[: 1 + len(captions)], sample_embeds, skipped, used)


def encode_prompt_table(
    family: Family, model: LoadedModel, prompts: list[str]
) -> list[PromptEmbeds]:
    """Per-prompt embeddings (batch of 1 each), encoded in chunks."""
    rows: list[PromptEmbeds] = []
    for start in range(0, len(prompts), ENCODE_CHUNK):
        chunk = prompts[start : start + ENCODE_CHUNK]
        encoded = family.encode_prompts(model, chunk)
        for i in range(len(chunk)):
            rows.append({k: v[i : i + 1].detach() for k, v in encoded.items()})
    return rows


def encode_items(
    family: Family,
    model: LoadedModel,
    dataset: list[PreparedItem],
    caption_rows: dict[str, int],
    on_skip: Callable[[SkippedFile], None] | None,
) -> tuple[list[CachedItem], list[SkippedFile], list[PreparedItem]]:
    """Decode and VAE-encode each item, grouped by bucket; undecodable files are skipped."""
    import torch

    items: list[CachedItem] = []
    skipped: list[SkippedFile] = []
    used: list[PreparedItem] = []
    for group in _groups_by_bucket(dataset):
        decoded: list[tuple[PreparedItem, torch.Tensor]] = []
        for item in group:
            try:
                decoded.append((item, load_pixels(item, family.spec)))
            except DatasetError as exc:
                skip = SkippedFile(item.name, exc.message)
                skipped.append(skip)
                if on_skip is not None:
                    on_skip(skip)
        for start in range(0, len(decoded), ENCODE_CHUNK):
            chunk = decoded[start : start + ENCODE_CHUNK]
            latents = family.encode_media(model, torch.stack([p for _, p in chunk]))
            for (item, _), latent in zip(chunk, latents, strict=True):
                items.append(cached_item(item, latent, caption_rows[item.caption]))
                used.append(item)
    return items, skipped, used


def _groups_by_bucket(dataset: list[PreparedItem]) -> list[list[PreparedItem]]:
    groups: dict[tuple[int, int, int | None], list[PreparedItem]] = {}
    for item in dataset:
        key = (item.plan.bucket_width, item.plan.bucket_height, item.plan.frames)
        groups.setdefault(key, []).append(item)
    return list(groups.values())


def cached_item(item: PreparedItem, latent: torch.Tensor, embed_index: int) -> CachedItem:
    """The cache entry for one encoded item: latents plus its SDXL-style size conditioning."""
    plan = item.plan
    left, top, right, _ = plan.crop_box
    scale = plan.bucket_width / max(1, right - left)
    return CachedItem(
        name=item.name,
        latents=latent.detach(),
        embed_index=embed_index,
        original_size=(plan.source_height, plan.source_width),
        crop_top_left=(round(top * scale), round(left * scale)),
        bucket=(plan.bucket_width, plan.bucket_height),
    )


def make_batch(
    cache: LatentCache,
    indices: list[int],
    dropout: list[bool],
) -> LatentBatch:
    """Stack cached items; where dropout[i] is True the caption is replaced by the empty prompt."""
    import torch

    chosen = [cache.items[i] for i in indices]
    rows = [0 if drop else item.embed_index for item, drop in zip(chosen, dropout, strict=True)]
    if len(chosen) == 1:  # batch size 1: views of the cached tensors, no copies
        latents = chosen[0].latents.unsqueeze(0)
        embeds = dict(cache.embeds[rows[0]])
    else:
        latents = torch.stack([item.latents for item in chosen])
        embeds = {k: torch.cat([cache.embeds[r][k] for r in rows]) for k in cache.embeds[0]}
    return LatentBatch(
        latents=latents,
        embeds=embeds,
        original_sizes=tuple(item.original_size for item in chosen),
        crop_top_lefts=tuple(item.crop_top_left for item in chosen),
    )
