"""What is in a corpus: counts, dates, lengths, languages and near-duplicates."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from datasketch import MinHash, MinHashLSH

from marinade.store import Store

LENGTH_BUCKETS = (50, 100, 200, 280, 500, 1000, 5000)  # characters; tweets end at 280


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
    lsh = MinHashLSH(threshold=near_threshold, num_perm=64)
    signatures: dict[int, tuple[set[str], str]] = {}
    pairs: list[NearDuplicate] = []
    batch: list[str] = []
    tokens = 0
    for document in store.documents(name):
        text = document["text"]
        stats.documents += 1
        stats.words += len(text.split())
        stats.replies += int(document["is_reply"] or 0)
        lengths[length_bucket(len(text))] += 1
        languages[document["language"] or "unknown"] += 1
        created = document["created_at"]
        if created:
            stats.first = min(stats.first or created, created)
            stats.last = max(stats.last or created, created)
        grams = shingles(text)
        signature = MinHash(num_perm=64)
        signature.update_batch([gram.encode() for gram in grams])
        for other in lsh.query(signature):
            other_grams, other_text = signatures[other]
            similarity = len(grams & other_grams) / max(1, len(grams | other_grams))
            if similarity >= near_threshold:
                pairs.append(NearDuplicate(other, document["id"], similarity, other_text, text))
        lsh.insert(document["id"], signature)
        signatures[document["id"]] = (grams, text)
        if count_tokens:
            batch.append(text)
            if len(batch) >= 512:
                tokens += count_tokens(batch)
                batch = []
    if count_tokens:
        stats.tokens = tokens + (count_tokens(batch) if batch else 0)
    stats.lengths = {bucket: lengths[bucket] for bucket in _bucket_order()}
    stats.languages = dict(languages.most_common())
    stats.near_duplicates = sorted(pairs, key=lambda pair: -pair.similarity)
    return stats


def _bucket_order() -> list[str]:
    return [length_bucket(low) for low in (0, *LENGTH_BUCKETS)]
