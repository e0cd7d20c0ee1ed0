"""Offline building blocks for tiny random pipelines: a toy CLIP tokenizer and small configs.

Tiny pipelines are saved in hub layout and loaded with the same ``from_pretrained`` code as
real checkpoints, so nothing here is used at training time.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel, CLIPTokenizer

TOY_WORDS = (
    *("photo", "of", "a", "the", "in", "an", "and", "with", "style", "portrait", "dog", "cat"),
    *("person", "man", "woman", "sks", "ohwx", "painting", "drawing", "red", "blue", "green"),
    *("on", "at", "by"),
)
TOY_SENTENCES = (  # corpus the toy T5 and Qwen tokenizers are trained on
    "a photo of a dog in the style of sks",
    "a painting of a cat on a red chair",
    "portrait of a man and a woman with blue and green light",
    "a drawing by ohwx of a person at the beach, video of a dog running",
)
TINY_SEED = 0


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable unicode table (the standard byte-level BPE alphabet)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes), strict=True))


def toy_clip_vocab(words: tuple[str, ...] = TOY_WORDS) -> tuple[dict[str, int], list[str]]:
    """A small CLIP-style BPE vocab and merge list: all bytes plus whole-word merges for words."""
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [ch + "</w>" for ch in alphabet]
    merges: list[str] = []
    for word in words:
        pieces = [*word[:-1], word[-1] + "</w>"]
        current = pieces[0]
        for piece in pieces[1:]:
            merge = f"{current} {piece}"
            current = current + piece
            if merge not in merges:
                merges.append(merge)
                tokens.append(current)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    return vocab, merges


def build_toy_clip_tokenizer(max_length: int = 77) -> CLIPTokenizer:
    """A CLIPTokenizer loaded with from_pretrained from toy vocab.json/merges.txt files."""
    from transformers import CLIPTokenizer

    vocab, merges = toy_clip_vocab()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        (folder / "merges.txt").write_text(
            "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
        )
        return CLIPTokenizer.from_pretrained(str(folder), model_max_length=max_length)


def tiny_clip_text_kwargs(vocab_size: int, hidden_size: int = 32) -> dict[str, int | float]:
    """CLIPTextConfig arguments: CLIP-L's 12 layers at toy width, matching the toy tokenizer."""
    return {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "intermediate_size": hidden_size * 2,
        "num_hidden_layers": 12,
        "num_attention_heads": 4,
        "max_position_embeddings": 77,
        "bos_token_id": vocab_size - 2,
        "eos_token_id": vocab_size - 1,
        "pad_token_id": vocab_size - 1,
        "layer_norm_eps": 1e-5,
    }


def tiny_vae_kwargs() -> dict[str, object]:
    """AutoencoderKL arguments: SD's layout (4 levels x 2 layers, 8x down, 4 channels), tiny."""
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "block_out_channels": (8, 8, 16, 16),
        "layers_per_block": 2,
        "latent_channels": 4,
        "norm_num_groups": 4,
        "sample_size": 64,
    }


def tiny_clip(projection_dim: int | None = None) -> tuple[CLIPTokenizer, CLIPTextModel]:
    """Toy tokenizer plus a random CLIP text encoder (with a projection head if asked)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = build_toy_clip_tokenizer()
    kwargs = tiny_clip_text_kwargs(len(tokenizer))
    if projection_dim is None:
        return tokenizer, CLIPTextModel(CLIPTextConfig(**kwargs))
    config = CLIPTextConfig(**kwargs, projection_dim=projection_dim)
    return tokenizer, CLIPTextModelWithProjection(config)


def tiny_vae(flux_layout: bool = False) -> AutoencoderKL:
    """A random AutoencoderKL with tiny_vae_kwargs(), its scaling calibrated to unit variance.

    ``flux_layout``: FLUX.1's VAE (no quant convs, a shift_factor as well as a scaling_factor),
    which Z-Image uses too.
    """
    from diffusers import AutoencoderKL

    if not flux_layout:
        return calibrate_scaling(AutoencoderKL(**tiny_vae_kwargs()), shift=False)
    kwargs = {**tiny_vae_kwargs(), "use_quant_conv": False, "use_post_quant_conv": False}
    return calibrate_scaling(AutoencoderKL(**kwargs), shift=True)


def calibration_pixels(count: int = 4, side: int = 64) -> torch.Tensor:
    """Photo-like test images in [-1, 1], (count, 3, side, side): smooth gradients plus grain.

    Tiny VAEs are random, so their latents have no meaningful scale; a tiny model measures its
    VAE on these and records the statistics the way real checkpoints record theirs, so its
    normalised latents are roughly unit variance like a real model's.
    """
    import numpy as np
    import torch

    rng = np.random.default_rng(TINY_SEED)
    y, x = np.mgrid[0:side, 0:side] / max(1, side - 1)
    images = []
    for index in range(count):
        phase = index / max(1, count)
        base = np.stack([x, y, (x + y + phase) % 1.0]) * 2 - 1
        images.append(np.clip(base + rng.normal(0, 0.15, base.shape), -1, 1))
    return torch.tensor(np.stack(images), dtype=torch.float32)


def calibration_clip(frames: int, side: int) -> torch.Tensor:
    """(1, 3, frames, side, side) in [-1, 1]: calibration_pixels images as consecutive frames."""
    return calibration_pixels(frames, side).transpose(0, 1).unsqueeze(0)


def latent_statistics(
    vae: Any,
    pixels: torch.Tensor,
    *,
    per_channel: bool = True,
    view: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of a tiny VAE's latents (mode) of calibration pixels.

    The one measurement every tiny model calibrates with (see calibration_pixels): per latent
    channel (dim 1, after ``view``, e.g. FLUX.2's 2x2 patchify) or one value over all of them,
    rounded for configs. Each family records it where its real checkpoint keeps the values.
    """
    import torch

    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mode()
    if view is not None:
        latents = view(latents)
    groups = latents.shape[1] if per_channel else 1
    flat = latents.transpose(0, 1).reshape(groups, -1).double()
    mean = [round(float(v), 4) for v in flat.mean(dim=1)]
    std = [round(max(float(v), 1e-3), 4) for v in flat.std(dim=1)]
    return mean, std


def calibrate_scaling(vae: AutoencoderKL, *, shift: bool) -> AutoencoderKL:
    """Record the one scaling_factor (and shift_factor) that SD / FLUX.1 VAEs publish."""
    mean, std = latent_statistics(vae, calibration_pixels(), per_channel=False)
    if shift:
        vae.register_to_config(shift_factor=mean[0])
    vae.register_to_config(scaling_factor=1 / std[0])
    return vae


def calibrate_channels(vae: Any, pixels: torch.Tensor) -> Any:
    """Record per-channel latents_mean/latents_std in the config, as Wan/Qwen-Image VAEs do."""
    mean, std = latent_statistics(vae, pixels)
    vae.register_to_config(latents_mean=mean, latents_std=std)
    return vae
