"""Automatic pre-filters: tags shown beside a sample, never a silent drop.

empty      no words at all
short      fewer than min_words words
too-long   over the platform's character limit (max_chars)
loop       a phrase repeating itself ("and the sea and the sea and the sea")
language   in a language the training text is not in (language.py)
duplicate  the same words as an earlier sample of the experiment
copied     copied_words or more words in a row copied from the training text
fragment   begins mid-sentence: a small letter, a comma, a dash, code (sentences.py), or
           a stray space (an unprompted sample that begins with a space or a line break
           continues a text); a prompted sample is judged with its prompt in front, as
           it would be posted
cut        ends mid-clause, not at a sentence end (sentences.py)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from marinade.curation.novelty import words
from marinade.sentences import begins_cleanly, ends_cleanly

TAGS = ("empty", "short", "too-long", "loop", "language", "duplicate", "copied", "fragment", "cut")


def is_loop(tokens: Sequence[str]) -> bool:
    """A word four times running, or a phrase of 2 to 8 words three times or more
    that covers at least a third of the text."""
    run = 1
    for previous, word in zip(tokens, tokens[1:], strict=False):
        run = run + 1 if word == previous else 1
        if run >= 4:
            return True
    for size in range(2, 9):
        grams = Counter(tuple(tokens[i : i + size]) for i in range(len(tokens) - size + 1))
        if grams:
            gram, count = grams.most_common(1)[0]
            if count >= 3 and count * size * 3 >= len(tokens):
                return True
    return False


def prefilter_tags(
    text: str,
    *,
    min_words: int,
    max_chars: int,
    foreign: bool,
    copied_words: int,
    copied_threshold: int,
    duplicate: bool,
    prompt: str = "",
) -> list[str]:
    tokens = words(text)
    tags = []
    if not tokens:
        tags.append("empty")
    elif len(tokens) < min_words:
        tags.append("short")
    if len(text.strip()) > max_chars:
        tags.append("too-long")
    if is_loop(tokens):
        tags.append("loop")
    if foreign:
        tags.append("language")
    if duplicate:
        tags.append("duplicate")
    if copied_words >= copied_threshold:
        tags.append("copied")
    stray_space = not prompt and text[:1].isspace()
    if tokens and (stray_space or not begins_cleanly(prompt + text)):
        tags.append("fragment")
    if tokens and not ends_cleanly(text):
        tags.append("cut")
    return tags
