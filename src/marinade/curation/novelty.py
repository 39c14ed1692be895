"""How much of a sample was copied word for word from the text its model was trained on.

Words are compared lower-cased, punctuation aside. Every three-word sequence of
the training text is indexed; each one a sample shares is extended both ways
to the longest stretch the sample and a document have in common. Three-word
sequences found in more than MAX_POSTINGS places ("one of the") are not
indexed: a long copied stretch still contains rarer ones that find it.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

WORD = re.compile(r"\w+(?:['’]\w+)*")
ANCHOR = 3  # words
MAX_POSTINGS = 400


def words(text: str) -> list[str]:
    return [word.lower() for word in WORD.findall(text)]


@dataclass(frozen=True)
class Copy:
    words: int  # the longest stretch copied word for word (0 when no word is shared)
    document_id: int | None  # the training document it came from (the closest one)


class TrainingText:
    """An index of training documents for `longest_copy`."""

    def __init__(self, documents: Iterable[tuple[int, str]]):
        self.vocabulary: dict[str, int] = {}
        self.document_ids: list[int] = []
        self.documents: list[array[int]] = []
        self.postings: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
        crowded: set[tuple[int, int, int]] = set()
        for document_id, text in documents:
            ids = array("i", (self._word_id(word) for word in words(text)))
            index = len(self.documents)
            self.document_ids.append(document_id)
            self.documents.append(ids)
            for position in range(len(ids) - ANCHOR + 1):
                key = (ids[position], ids[position + 1], ids[position + 2])
                if key in crowded:
                    continue
                places = self.postings.setdefault(key, [])
                places.append((index, position))
                if len(places) > MAX_POSTINGS:
                    crowded.add(key)
                    del self.postings[key]

    def _word_id(self, word: str) -> int:
        return self.vocabulary.setdefault(word, len(self.vocabulary))

    def longest_copy(self, text: str) -> Copy:
        sample = [self.vocabulary.get(word, -1) for word in words(text)]
        best, best_document = 0, None
        if any(word >= 0 for word in sample):
            best = 1  # a shared word, at least
        for start in range(len(sample) - ANCHOR + 1):
            key = (sample[start], sample[start + 1], sample[start + 2])
            for index, position in self.postings.get(key, ()):
                document = self.documents[index]
                before = 0
                while (
                    start - before > 0
                    and position - before > 0
                    and sample[start - before - 1] == document[position - before - 1]
                ):
                    before += 1
                after = ANCHOR
                while (
                    start + after < len(sample)
                    and position + after < len(document)
                    and sample[start + after] == document[position + after]
                ):
                    after += 1
                if before + after > best or best_document is None:
                    best, best_document = max(best, before + after), self.document_ids[index]
        return Copy(words=best, document_id=best_document)
