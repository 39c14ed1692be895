"""What is in a corpus: counts, dates, lengths, languages and near-duplicates."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from datasketch import MinHash, MinHashLSH

from marinade.language import confident_language
from marinade.store import Store

LENGTH_BUCKETS = (50, 100, 200, 280, 500, 1000, 5000)  # characters; tweets end at 280
BATCH = 1000  # documents per MinHash.bulk call and tokenizer call


@dataclass
class NearDuplicate:
    first_id: int
    second_id: int
    similarity: float  # Jaccard similarity of word 3-grams
    first_text: str
    second_text: str


@dataclass
class CorpusStats:
    name: str
    documents: int = 0
    words: int = 0
    tokens: int | None = None
    tokenizer: str | None = None
    first: str | None = None
    last: str | None = None
    replies: int = 0
    lengths: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    languages_detected: int = 0  # of those, told by py3langid (the archive named none)
    near_duplicates: list[NearDuplicate] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def length_bucket(length: int) -> str:
    low = 0
    for high in LENGTH_BUCKETS:
        if length < high:
            return f"{low}-{high - 1}"
        low = high
    return f"{low}+"


def shingles(text: str, size: int = 3) -> set[str]:
    words = text.lower().split()
    if len(words) < size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def corpus_stats(
    store: Store,
    name: str,
    count_tokens: Callable[[list[str]], int] | None = None,
    tokenizer_name: str | None = None,
    near_threshold: float = 0.8,
) -> CorpusStats:
    """Statistics of a corpus; near-duplicates are pairs above `near_threshold`."""
    store.corpus(name)  # a clear error for an unknown name
    stats = CorpusStats(name=name, tokenizer=tokenizer_name)
    lengths: Counter[str] = Counter()
    languages: Counter[str] = Counter()
    finder = NearDuplicateFinder(near_threshold)
    tokens = 0
    for batch in _batches(store.documents(name), BATCH):
        for document in batch:
            text = document["text"]
            stats.documents += 1
            stats.words += len(text.split())
            stats.replies += int(document["is_reply"] or 0)
            lengths[length_bucket(len(text))] += 1
            language = document["language"]
            if not language:  # the archive names none: ask the identifier, where it is sure
                language = confident_language(text)
                stats.languages_detected += language is not None
            languages[language or "unknown"] += 1
            created = document["created_at"]
            if created:
                stats.first = min(stats.first or created, created)
                stats.last = max(stats.last or created, created)
        finder.add([(document["id"], document["text"]) for document in batch])
        if count_tokens:
            tokens += count_tokens([document["text"] for document in batch])
    stats.tokens = tokens if count_tokens else None
    stats.lengths = {bucket: lengths[bucket] for bucket in _bucket_order()}
    stats.languages = dict(languages.most_common())
    stats.near_duplicates = sorted(finder.pairs, key=lambda pair: -pair.similarity)
    return stats


class NearDuplicateFinder:
    """Pairs of texts whose word 3-gram Jaccard similarity reaches a threshold.

    MinHash LSH proposes candidates and the exact similarity decides. Signatures
    are made a batch at a time (MinHash.bulk): one by one, building each
    MinHash's permutations cost 4x more than everything else.
    """

    def __init__(self, threshold: float, num_perm: int = 64):
        self.threshold, self.num_perm = threshold, num_perm
        # LSH finds pairs near its threshold only with some probability: ask it for
        # looser candidates and let the exact similarity decide.
        self.lsh = MinHashLSH(threshold=max(0.1, threshold - 0.2), num_perm=num_perm)
        self.seen: dict[int, tuple[set[str], str]] = {}
        self.pairs: list[NearDuplicate] = []

    def add(self, documents: list[tuple[int, str]]) -> None:
        grams = [shingles(text) for _, text in documents]
        signatures = MinHash.bulk(
            [[gram.encode() for gram in document_grams] for document_grams in grams],
            num_perm=self.num_perm,
        )
        for (doc_id, text), document_grams, signature in zip(
            documents, grams, signatures, strict=True
        ):
            for other in self.lsh.query(signature):
                other_grams, other_text = self.seen[other]
                union = len(document_grams | other_grams)
                similarity = len(document_grams & other_grams) / max(1, union)
                if similarity >= self.threshold:
                    self.pairs.append(NearDuplicate(other, doc_id, similarity, other_text, text))
            self.lsh.insert(doc_id, signature)
            self.seen[doc_id] = (document_grams, text)


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _bucket_order() -> list[str]:
    return [length_bucket(low) for low in (0, *LENGTH_BUCKETS)]
