"""Offline Mistral 3 pieces for tiny random pipelines (FLUX.2 [dev]'s text encoder).

FLUX.2 [dev] lays every prompt out after its long system message through the tokenizer's chat
template (typed content lists). The toy tokenizer is tiny_qwen's byte-level BPE trained on that
message too, so message plus prompt fit the pipeline's 512 tokens as with Mistral's own
tokenizer, wrapped as a plain fast tokenizer with Mistral's control tokens and a chat template
of our own laying out the same turns. (The real checkpoint's ``PixtralProcessor`` needs
torchvision; the pipeline only calls ``apply_chat_template``, which a tokenizer has too.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>", "[INST]", "[/INST]")
SPECIAL_TOKENS += ("[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[IMG]")
# Mistral Small 3.x's layout for typed content lists (text parts only; no images are sent).
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{% if message['role'] == 'system' %}"
    "[SYSTEM_PROMPT]{{ part['text'] }}[/SYSTEM_PROMPT]"
    "{% elif message['role'] == 'user' %}[INST]{{ part['text'] }}[/INST]"
    "{% else %}{{ part['text'] }}{{ eos_token }}{% endif %}{% endif %}"
    "{% endfor %}{% endfor %}"
)


def build_toy_mistral_tokenizer(
    extra_text: tuple[str, ...], max_length: int
) -> PreTrainedTokenizerFast:
    """A fast tokenizer with Mistral's control tokens, trained on the toy corpus + extra_text."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    from training.models.tiny_qwen import toy_qwen_vocab

    vocab, merges = toy_qwen_vocab(extra_text, SPECIAL_TOKENS)
    bpe = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    bpe.pre_tokenizer = pre_tokenizers.Sequence(  # the splitting the vocab was trained with
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=max_length,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS[4:])})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_mistral3(vocab_size: int, image_token_id: int, layers: int, hidden_size: int) -> Any:
    """A random Mistral3ForConditionalGeneration: toy decoder ``layers`` deep, 1-block Pixtral."""
    from transformers import (
        Mistral3Config,
        Mistral3ForConditionalGeneration,
        MistralConfig,
        PixtralVisionConfig,
    )

    from training.models.tiny_qwen import tiny_qwen_text_kwargs

    # The decoder arguments are the same for Mistral's config as for Qwen's.
    text = {**tiny_qwen_text_kwargs(vocab_size, hidden_size), "num_hidden_layers": layers}
    text.update(bos_token_id=1, eos_token_id=2, pad_token_id=3)  # <s>, </s>, <pad>
    vision = PixtralVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        head_dim=8,
        image_size=32,
        patch_size=16,
    )
    config = Mistral3Config(
        text_config=MistralConfig(**text),
        vision_config=vision,
        image_token_index=image_token_id,
        spatial_merge_size=1,
    )
    return Mistral3ForConditionalGeneration(config)
