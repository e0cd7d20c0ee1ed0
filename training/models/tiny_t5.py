"""Offline T5/UMT5 pieces for tiny random pipelines (FLUX's second encoder, Wan's encoder).

The tokenizer is a Unigram model trained here on a few sentences, so no sentencepiece file is
downloaded; it is saved with ``save_pretrained`` and loaded back like a real checkpoint's.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from training.models.tiny_parts import TOY_SENTENCES, TOY_WORDS

if TYPE_CHECKING:
    from transformers import T5TokenizerFast


def build_toy_t5_tokenizer(max_length: int = 32) -> T5TokenizerFast:
    """A T5 tokenizer (<pad>=0, </s>=1, <unk>=2) trained offline on toy sentences."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import T5TokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=256,
        special_tokens=["<pad>", "</s>", "<unk>"],  # T5's fixed ids 0, 1, 2
        unk_token="<unk>",
    )
    corpus = [*TOY_SENTENCES, " ".join(TOY_WORDS)]
    tokenizer.train_from_iterator(corpus, trainer)
    # Rebuild from the trained pieces so T5's own normaliser/post-processor (adds </s>) apply.
    vocab = [tuple(piece) for piece in json.loads(tokenizer.to_str())["model"]["vocab"]]
    return T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=max_length)


def tiny_t5_kwargs(vocab_size: int, d_model: int = 32) -> dict[str, object]:
    """T5Config/UMT5Config arguments for a 1-layer encoder matching the toy tokenizer."""
    return {
        "vocab_size": vocab_size,
        "d_model": d_model,
        "d_kv": 8,
        "d_ff": d_model * 2,
        "num_layers": 1,
        "num_decoder_layers": 1,
        "num_heads": 4,
        "relative_attention_num_buckets": 8,
        "relative_attention_max_distance": 32,
        "feed_forward_proj": "gated-gelu",
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
    }
