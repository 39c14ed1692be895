"""Where sentences end and whether a text begins like one: for samples a person would post.

A sample that stops because `max_new_tokens` ran out usually stops mid-clause, and one
that starts from a model's habit for "whatever follows end of text" often starts with
", " or "--". Sampling trims to the last sentence end (sampling.py's whole sentences),
and the pre-filters tag a `fragment` (begins mid-sentence) and a `cut` (ends mid-clause).

A sentence ends at a terminator (. ! ? … ; 。！？ ; the Devanagari danda । and ॥ ; the
Arabic ؟ and the Urdu ۔), with any closing quotes or brackets and any emoji after it,
before whitespace or the end of the text. East-Asian terminators need no space after
them. A run of emoji at the very end of a text ends it too: posts often stop there.
A period is not an end after a known abbreviation ("Dr.", "e.g."), after a single
letter (an initial: "J. Smith", "plan B." too), or when the next word starts with a small letter
("the stars... and then"), so most abbreviations outside the list are caught as well.
Light to import (no torch).
"""

from __future__ import annotations

import re
import unicodedata

TERMINATORS = ".!?…。！？।॥؟۔"
NO_SPACE_NEEDED = "。！？"  # CJK full-width terminators: the next sentence follows at once
CLOSERS = "\"'”’»)]}」』】〕）"
OPENERS = "\"'“‘«„「『（([¿¡"
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc e.g i.e cf approx dept est fig inc ltd no vol ca "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_EMOJI = r"[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200D\U0001F3FB-\U0001F3FF]"
_END = re.compile(rf"(?P<mark>[{re.escape(TERMINATORS)}]+)[{re.escape(CLOSERS)}]*(?:\s?{_EMOJI})*")
_TRAILING_EMOJI = re.compile(rf"\S\s?{_EMOJI}+\s*$")


def _is_end(text: str, match: re.Match[str]) -> bool:
    """Whether a terminator match really ends a sentence (see the module docstring)."""
    after = text[match.end() :]
    mark = match["mark"]
    if mark[-1] in NO_SPACE_NEEDED:
        return True
    if after and not after[0].isspace():
        return False  # "3.5", "e.g.x", "?!" inside a word
    following = after.lstrip()
    if following[:1].islower():
        return False  # "e.g. this", "wait... and then"
    if mark == ".":
        word = re.search(r"(\S+)$", text[: match.start()])
        if word:
            stem = word[1].lstrip(OPENERS).lower()
            if stem in ABBREVIATIONS and (following or stem != "etc"):
                return False
            if len(stem) == 1 and stem.isalpha():
                return False  # an initial ("J. Smith"), also at the end: the name follows
    return True


def sentence_ends(text: str) -> list[int]:
    """Offsets just after each sentence end in `text`, in order."""
    ends = [match.end() for match in _END.finditer(text) if _is_end(text, match)]
    stripped = text.rstrip()
    if _TRAILING_EMOJI.search(stripped) and (not ends or ends[-1] < len(stripped)):
        ends.append(len(stripped))
    return ends


def last_sentence_end(text: str) -> int | None:
    """Where the last whole sentence of `text` ends, or None when it has none."""
    ends = sentence_ends(text)
    return ends[-1] if ends else None


def ends_cleanly(text: str) -> bool:
    """Whether `text` ends at a sentence end (trailing whitespace aside)."""
    stripped = text.rstrip()
    return bool(stripped) and last_sentence_end(stripped) == len(stripped)


def begins_cleanly(text: str) -> bool:
    """Whether `text` begins as a text begins: a capital letter, a digit, an opening quote
    or bracket, a letter of a script without capitals (漢字, देवनागरी, العربية), an emoji,
    or a mention or hashtag; not a small letter, a comma, a dash or a line of code."""
    stripped = text.lstrip()
    if not stripped:
        return False
    first = stripped[0]
    if first.isupper() or first.isdigit() or first in OPENERS or first in "@#":
        return True
    if first.isalpha():
        return first.lower() == first.upper()  # caseless scripts
    return unicodedata.category(first) == "So"  # emoji and other symbols
