"""The caption rule training applies and the dataset pages explain (catalogue.prompts)."""

from __future__ import annotations

import pytest

from catalogue.prompts import TRIGGER_RULE, fill_trigger, has_trigger, trained_caption


@pytest.mark.parametrize(
    ("caption", "template", "trigger", "trained"),
    [
        ("photo of sks red", "photo of {trigger}", "ohwx", "ohwx, photo of sks red"),
        ("a [trigger] dog", "photo of {trigger}", "ohwx", "a ohwx dog"),
        (None, "photo of {trigger}", "ohwx", "photo of ohwx"),
        (None, "a red car", "ohwx", "ohwx, a red car"),  # a template without the marker
        (None, "", "ohwx", "ohwx"),
        ("  two   lines\n here ", "", "", "two lines here"),
        (None, "photo of {trigger}", "", "photo"),
        (None, "{trigger}, a red car", "", "a red car"),
        (None, "", "", ""),
    ],
)
def test_trained_caption(caption: str | None, template: str, trigger: str, trained: str) -> None:
    assert trained_caption(caption, template, trigger) == trained


def test_the_trigger_counts_only_as_a_word_of_its_own() -> None:
    assert has_trigger("ohwx, a dog", "ohwx") and has_trigger("a dog by OHWX.", "ohwx")
    assert not has_trigger("ohwx_2 dog", "ohwx") and not has_trigger("ohwx-like dog", "ohwx")
    assert not has_trigger("anything", "")


def test_sample_prompts_follow_the_same_markers() -> None:
    assert fill_trigger("a photo of [trigger] in snow", "sks") == "a photo of sks in snow"
    assert fill_trigger("a photo of [trigger] in snow", "") == "a photo in snow"
    assert "in front" in TRIGGER_RULE
