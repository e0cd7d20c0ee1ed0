"""Automatic captions: the GPU job captions ready items with a configured model (a tiny random
BLIP saved on disk here, loaded by the same pipeline code a real model goes through)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from jobs.captions import CAPTION_PROMPT, caption_dataset
from jobs.datasets import ingest_item
from tests.support.media_files import (
    items_of,
    jpeg_bytes,
    uploaded_item,
)


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BLIP captioning model with its processor, in the hub layout."""
    from transformers import (
        BertTokenizerFast,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    folder = tmp_path_factory.mktemp("tiny-blip")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", "cat", "[DEC]"]
    (folder / "vocab.txt").write_text("\n".join(words))
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), bos_token="[DEC]")
    images = BlipImageProcessor(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    small = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4}
    config = BlipConfig(
        text_config={**small, "vocab_size": len(words), "num_hidden_layers": 2,
                     "bos_token_id": 9, "pad_token_id": 0, "sep_token_id": 3,
                     "encoder_hidden_size": 32},
        vision_config={**small, "num_hidden_layers": 2, "image_size": 32, "patch_size": 8},
        projection_dim=32,
    )  # fmt: skip
    BlipForConditionalGeneration(config).save_pretrained(folder)
    return folder


def test_ready_items_without_a_caption_get_one(ingest_app: Flask, tiny_blip: Path) -> None:
    item = uploaded_item("cat.jpg", jpeg_bytes())
    assert ingest_item(item) == "ready"
    dataset_id = item.dataset_id
    assert caption_dataset(dataset_id, str(tiny_blip)) == "captioned 1"
    (captioned,) = items_of(dataset_id)
    assert captioned.caption and captioned.caption.startswith(CAPTION_PROMPT)
    assert caption_dataset(dataset_id, str(tiny_blip)) == "nothing to caption"  # re-run is safe
