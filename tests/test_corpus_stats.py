"""Near-duplicate search and the length histogram behind `corpus stats`."""

from __future__ import annotations

from marinade.corpus.stats import NearDuplicateFinder, length_bucket

LAMPS = "Every city has one street where the lamps come on a minute early. Find it."
LAMPS_AGAIN = "Every city has one street where the lamps come on a minute early. Go find it!"


def test_near_duplicates_found_at_their_exact_similarity():
    finder = NearDuplicateFinder(threshold=0.6)
    others = [
        (i, f"note {i}: the harbour at night has {i} boats and no opinions at all")
        for i in range(3, 40)
    ]
    finder.add([(1, LAMPS)] + others[:10])
    finder.add([(2, LAMPS_AGAIN)] + others[10:])
    lamp_pairs = [p for p in finder.pairs if {p.first_id, p.second_id} == {1, 2}]
    assert len(lamp_pairs) == 1
    assert abs(lamp_pairs[0].similarity - 11 / 16) < 1e-9  # 11 shared word 3-grams of 16
    strict = NearDuplicateFinder(threshold=0.8)
    strict.add([(1, LAMPS), (2, LAMPS_AGAIN)])
    assert strict.pairs == []


def test_length_buckets():
    assert [length_bucket(n) for n in (0, 49, 50, 279, 280, 6000)] == [
        "0-49",
        "0-49",
        "50-99",
        "200-279",
        "280-499",
        "5000+",
    ]
