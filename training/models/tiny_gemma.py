"""Offline Gemma 3 pieces for tiny random pipelines (LTX-2's text encoder).

The tokenizer is a byte-level-fallback BPE trained here on a few sentences with Gemma's own
normaliser (spaces become "▁") and its fixed special ids (<pad>=0, <eos>=1, <bos>=2, <unk>=3),
wrapped in transformers' ``GemmaTokenizer`` (the fast, tokenizers-backed class) and saved with
``save_pretrained``, so nothing is downloaded and the real loading path reads it back.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from training.models.tiny_parts import TOY_SENTENCES, TOY_WORDS

if TYPE_CHECKING:
    from transformers import GemmaTokenizer

SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
BYTE_TOKENS = [f"<0x{value:02X}>" for value in range(256)]  # byte fallback, as Gemma's vocab


def build_toy_gemma_tokenizer(max_length: int = 64) -> GemmaTokenizer:
    """A GemmaTokenizer (BPE with byte fallback) trained offline on toy sentences."""
    from tokenizers import Tokenizer, models, normalizers, trainers
    from transformers import GemmaTokenizer

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tokenizer.normalizer = normalizers.Replace(" ", "▁")
    trainer = trainers.BpeTrainer(
        vocab_size=len(SPECIAL_TOKENS) + len(BYTE_TOKENS) + 160,
        special_tokens=SPECIAL_TOKENS + BYTE_TOKENS,
        show_progress=False,
    )
    tokenizer.train_from_iterator([*TOY_SENTENCES, " ".join(TOY_WORDS)], trainer)
    model = json.loads(tokenizer.to_str())["model"]
    merges = [
        tuple(pair) if isinstance(pair, list) else tuple(pair.split(" "))
        for pair in model["merges"]
    ]
    return GemmaTokenizer(
        vocab=model["vocab"],
        merges=merges,
        model_max_length=max_length,
        add_bos_token=True,  # as Gemma's own tokenizer.json does
    )


def tiny_gemma3_config(vocab_size: int, hidden_size: int = 16, layers: int = 2) -> Any:
    """Gemma3Config of a 2-layer text model and a 1-layer SigLIP tower (the class needs one)."""
    from transformers import Gemma3Config

    return Gemma3Config(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": hidden_size,
            "intermediate_size": hidden_size * 2,
            "num_hidden_layers": layers,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 8,
            "max_position_embeddings": 256,
            "sliding_window": 32,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "bos_token_id": 2,
        },
        vision_config={
            "hidden_size": 8,
            "intermediate_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 16,
            "patch_size": 8,
        },
        mm_tokens_per_image=4,
        image_token_index=vocab_size - 1,
        boi_token_index=vocab_size - 2,
        eoi_token_index=vocab_size - 3,
    )
