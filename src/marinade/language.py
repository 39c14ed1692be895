"""Which language a text is in: the `language` pre-filter, and `corpus stats` for
documents whose archive names no language.

py3langid (a maintained fork of langid.py) does the identifying: a naive Bayes model of
97 languages over byte n-grams, shipped inside the package, so nothing is downloaded.
It is quick (tens of microseconds a text) and sure of itself on a sentence, less so on a
few words; so texts under MIN_WORDS words are not judged, and a sample is tagged only
when the model is at least CONFIDENT that it is in a language the corpus is not.

A corpus's languages are those of at least CORPUS_SHARE of its documents (long enough to
judge), so someone who writes in two languages is not told that half their posts are
foreign.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

MIN_WORDS = 5
WORD = re.compile(r"\w+(?:['’]\w+)*")  # words as curation/novelty.py counts them
CONFIDENT = 0.8  # the model's probability for its answer
CORPUS_SHARE = 0.2
MAX_DOCUMENTS = 2000  # documents read to find a corpus's languages, spread evenly


@functools.cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> tuple[str, float] | None:
    """The language code (ISO 639-1, like "en") and the model's probability for it;
    None for a text too short to judge."""
    if len(WORD.findall(text)) < MIN_WORDS:
        return None
    language, probability = _identifier().classify(text)
    return str(language), float(probability)


def confident_language(text: str) -> str | None:
    """The text's language where the model is at least CONFIDENT; None otherwise."""
    detected = detect_language(text)
    return detected[0] if detected is not None and detected[1] >= CONFIDENT else None


def corpus_languages(texts: Sequence[str]) -> frozenset[str]:
    """The languages of at least CORPUS_SHARE of the texts long enough to judge, or of
    all of them together when none is; empty when even that is too short."""
    step = max(1, len(texts) // MAX_DOCUMENTS)
    found = Counter(
        detected[0]
        for detected in (detect_language(text) for text in texts[::step])
        if detected is not None
    )
    judged = sum(found.values())
    if not judged:  # only short texts (a corpus of one-liners): judge them together
        together = detect_language(" ".join(texts[::step]))
        return frozenset() if together is None else frozenset([together[0]])
    return frozenset(
        language for language, count in found.items() if count >= CORPUS_SHARE * judged
    )


def is_foreign(text: str, languages: Iterable[str]) -> bool:
    """True when the text is, with confidence, in none of these languages
    (never when the languages are unknown or the text is too short)."""
    known = set(languages)
    language = confident_language(text) if known else None
    return language is not None and language not in known
