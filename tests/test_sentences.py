"""Sentence ends and clean beginnings on known texts: abbreviations, quotes, ellipses,
emoji and scripts other than Latin; the pre-filter tags built on them."""

from __future__ import annotations

import pytest

from marinade.curation.prefilters import prefilter_tags
from marinade.sentences import begins_cleanly, ends_cleanly, last_sentence_end


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("I met Dr. Smith today. He was kind and", "I met Dr. Smith today."),
        ("Fruit, e.g. apples, is good. Pears, i.e. the", "Fruit, e.g. apples, is good."),
        ('She said "Go home." Then she', 'She said "Go home."'),
        ("Wait... and then it rained. Then", "Wait... and then it rained."),
        ("Wait… What a day! And the", "Wait… What a day!"),
        ("Made it! 🎉 Next week we", "Made it! 🎉"),
        ("Mr. J. Smith came by. He", "Mr. J. Smith came by."),
        ("It costs 3.5 pounds. Cheap", "It costs 3.5 pounds."),
        ("今日は晴れ。明日も", "今日は晴れ。"),
        ("यह अच्छा है। और फिर", "यह अच्छा है।"),
        ("كيف حالك؟ بخير و", "كيف حالك؟"),
        ("Really?! (Yes.) And", "Really?! (Yes.)"),
    ],
)
def test_the_last_sentence_end_keeps_whole_sentences_only(text, kept):
    end = last_sentence_end(text)
    assert end is not None and text[:end] == kept


@pytest.mark.parametrize(
    "text",
    ["Ask Dr.", "For example, e.g.", "Walked to the", "the stars... and then", "Named after J."],
)
def test_no_sentence_end_where_a_sentence_goes_on(text):
    assert not ends_cleanly(text)


@pytest.mark.parametrize(
    "text",
    ["Done.", "Done!  ", "We had bread, cheese, etc.", "Love this 😍", "終わり。", "बस।", "Why?”"],
)
def test_texts_that_end_at_a_sentence_end(text):
    assert ends_cleanly(text)


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("The kettle boiled.", True),
        ('"Hello," she said.', True),
        ("“Quiet,” he said.", True),
        ("3 things I learned.", True),
        ("雨が降った。", True),
        ("आज बारिश हुई।", True),
        ("🎉 We did it.", True),
        ("@sam thanks!", True),
        ("and then it rained.", False),
        (", and then it rained.", False),
        ("-_ the end", False),
        ("--,-- x", False),
        ("    return x", False),
        ("}\n", False),
        ("", False),
    ],
)
def test_a_clean_beginning_is_how_a_text_begins(text, clean):
    assert begins_cleanly(text) is clean


def tags(text: str, prompt: str = "") -> list[str]:
    return prefilter_tags(
        text,
        min_words=1,
        max_chars=280,
        foreign=False,
        copied_words=0,
        copied_threshold=8,
        duplicate=False,
        prompt=prompt,
    )


def test_fragment_and_cut_tags_on_hand_written_samples():
    assert tags("The kettle boiled. I made tea.") == []
    assert tags(", and the kettle boiled.") == ["fragment"]
    assert tags("The kettle boiled and I") == ["cut"]
    assert tags("-_ boiled and") == ["fragment", "cut"]
    assert tags("") == ["empty"]  # nothing to begin or end
    assert tags(" The kettle boiled.") == ["fragment"]  # a stray space: it continues a text
    assert tags("\nThe kettle boiled.") == ["fragment"]


def test_a_prompted_sample_is_judged_with_its_prompt_in_front():
    assert tags(" kettle boiled.", prompt="The") == []
    assert tags(" kettle boiled.", prompt="the") == ["fragment"]
