"""Offline Qwen pieces for tiny random pipelines: a byte-level BPE tokenizer and tiny encoders.

Qwen-Image's Qwen2.5-VL and Z-Image's Qwen3 both tokenize with ``Qwen2Tokenizer``: byte-level
BPE with ``<|im_start|>``/``<|im_end|>`` chat markers. The toy tokenizer is trained here, with
Qwen2Tokenizer's own pre-tokenizer, until every word of a small corpus (the toy sentences and
Qwen-Image's prompt template) is one token, so Qwen-Image's system prompt is 34 tokens long
exactly as with the real tokenizer (the pipeline drops a fixed 34 tokens of template). It is
saved with ``save_pretrained`` and loaded back through the pipeline's ``from_pretrained``, like
a real checkpoint's.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from training.models.tiny_parts import TOY_SENTENCES, TOY_WORDS

if TYPE_CHECKING:
    from transformers import Qwen2Tokenizer

_CHAT_WORDS = ("system", "user", "assistant", "think")
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
QWEN_IMAGE_TEMPLATE = (  # QwenImagePipeline.prompt_template_encode, prompt left out
    "<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, "
    "quantity, text, spatial relationships of the objects and background:<|im_end|>\n"
    "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n"
)
# Qwen3's template reduced to what ZImagePipeline sends: user turns, a generation prompt, and
# an empty think block only when thinking is switched off (Z-Image switches it on).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}"
    "<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


def toy_qwen_vocab(
    extra_text: tuple[str, ...] = (), specials: tuple[str, ...] = SPECIAL_TOKENS
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level BPE trained until every word of the toy corpus (plus extra_text) is one token."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(  # Qwen2Tokenizer's own splitting
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=4096,  # more than the corpus can fill: training stops when all words are whole
        min_frequency=1,
        special_tokens=list(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    words = (*TOY_WORDS, *_CHAT_WORDS)
    corpus = [*TOY_SENTENCES, " ".join(words), "\n".join(words), QWEN_IMAGE_TEMPLATE, *extra_text]
    tokenizer.train_from_iterator(corpus, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges


def build_toy_qwen_tokenizer(max_length: int = 1024) -> Qwen2Tokenizer:
    """A Qwen2Tokenizer (pad = <|endoftext|>) with the chat markers and a chat template."""
    from transformers import Qwen2Tokenizer

    vocab, merges = toy_qwen_vocab()
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        model_max_length=max_length,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_qwen_text_kwargs(vocab_size: int, hidden_size: int = 32) -> dict[str, Any]:
    """Qwen2/Qwen3 text-model arguments: 2 layers, grouped-query attention, toy width."""
    return {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "intermediate_size": hidden_size * 2,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": hidden_size // 2,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False,
        "bos_token_id": None,
        "eos_token_id": 0,  # <|endoftext|>
        "pad_token_id": 0,
    }


def tiny_qwen25_vl(vocab_size: int, hidden_size: int = 32) -> Any:
    """A random Qwen2_5_VLForConditionalGeneration: tiny text tower and a 1-block vision tower."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    text = tiny_qwen_text_kwargs(vocab_size, hidden_size)
    head_half = text["head_dim"] // 2  # multimodal RoPE splits half the head over (t, h, w)
    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 1_000_000.0,
        "mrope_section": [head_half // 4, head_half // 4, head_half - 2 * (head_half // 4)],
    }
    vision = {
        "depth": 1,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_heads": 2,
        "out_hidden_size": hidden_size,
        "fullatt_block_indexes": [0],
    }
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision)
    return Qwen2_5_VLForConditionalGeneration(config)


def tiny_qwen3(vocab_size: int, hidden_size: int = 32) -> Any:
    """A random Qwen3Model (the bare decoder, as Z-Image loads its text encoder)."""
    from transformers import Qwen3Config, Qwen3Model

    return Qwen3Model(Qwen3Config(**tiny_qwen_text_kwargs(vocab_size, hidden_size)))
