"""Offline chat-model text encoders for tiny random pipelines (Qwen3 for FLUX.2 klein, Mistral 3
for FLUX.2 dev, and any other family whose prompts go through a decoder LLM's chat template).

The tokenizer is a byte-level BPE trained here with the ``tokenizers`` library on the toy
sentences plus whatever text the pipeline itself always sends (FLUX.2-dev's system message), so
real prompts tokenize into a handful of pieces and fit the tiny sequence length. The chat
templates are short ones of our own that lay out the same turns as the real models' templates.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from training.models.tiny_parts import TOY_WORDS
from training.models.tiny_t5 import toy_sentences

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast, Qwen2TokenizerFast

QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MISTRAL_SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", "[INST]", "[/INST]"]
MISTRAL_SPECIALS += ["[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[IMG]"]

# Qwen3's turn layout; with enable_thinking=False the generation prompt holds an empty think block.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n"
    "{% endif %}{% endif %}"
)
# Mistral Small 3.x's layout for typed content lists (text parts only; images are not used).
MISTRAL_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{% if message['role'] == 'system' %}"
    "[SYSTEM_PROMPT]{{ part['text'] }}[/SYSTEM_PROMPT]"
    "{% elif message['role'] == 'user' %}[INST]{{ part['text'] }}[/INST]"
    "{% else %}{{ part['text'] }}{{ eos_token }}{% endif %}{% endif %}"
    "{% endfor %}{% endfor %}"
)


def train_byte_bpe(extra_text: tuple[str, ...], specials: list[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE (GPT-2/Qwen alphabet) trained offline on toy sentences plus extra_text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([*toy_sentences(), " ".join(TOY_WORDS), *extra_text], trainer)
    return tokenizer


def build_toy_qwen_tokenizer(max_length: int = 64) -> Qwen2TokenizerFast:
    """A Qwen2TokenizerFast (Qwen3's tokenizer class) with Qwen's special tokens and turns."""
    from transformers import Qwen2TokenizerFast

    trained = json.loads(train_byte_bpe((), QWEN_SPECIALS, vocab_size=400).to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]
    tokenizer = Qwen2TokenizerFast(
        vocab=trained["vocab"],
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=max_length,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": QWEN_SPECIALS})
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    return tokenizer


def build_toy_mistral_tokenizer(
    extra_text: tuple[str, ...], max_length: int
) -> PreTrainedTokenizerFast:
    """A fast tokenizer with Mistral's control tokens and a chat template for content lists."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=train_byte_bpe(extra_text, MISTRAL_SPECIALS, vocab_size=700),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=max_length,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": MISTRAL_SPECIALS[4:]})
    tokenizer.chat_template = MISTRAL_CHAT_TEMPLATE
    return tokenizer


def tiny_decoder_kwargs(vocab_size: int, layers: int, hidden_size: int = 16) -> dict[str, object]:
    """Qwen3Config/MistralConfig arguments: toy width, ``layers`` deep (pipelines read layer k)."""
    return {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "intermediate_size": hidden_size * 2,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": hidden_size // 2,
        "max_position_embeddings": 1024,
        "tie_word_embeddings": False,
    }
