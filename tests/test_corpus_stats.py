"""Near-duplicate search, the length histogram and languages behind `corpus stats`."""

from __future__ import annotations

from marinade.corpus.document import Document
from marinade.corpus.importing import import_records
from marinade.corpus.stats import NearDuplicateFinder, corpus_stats, length_bucket

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


def test_languages_the_archive_names_are_kept_and_the_rest_told_from_the_text(store):
    texts = [
        ("The harbour at night has three boats, one gull and no opinions at all.", None),
        ("I like tea and toast and the sound of rain on a tin roof.", None),
        ("Le port la nuit : trois bateaux, une mouette et aucune opinion du tout.", None),
        ("Tea.", None),  # too short to tell
        ("Der Hafen bei Nacht hat drei Boote und eine Möwe.", "de"),  # the archive says so
        ("This one is English, whatever the archive claims it to be.", "it"),
    ]
    documents = [
        Document(text, None, "test", record_id=str(i), language=language)
        for i, (text, language) in enumerate(texts)
    ]
    import_records(store, documents, "mixed", "test", "test")
    stats = corpus_stats(store, "mixed")
    assert stats.languages == {"en": 2, "fr": 1, "unknown": 1, "de": 1, "it": 1}
    assert stats.languages_detected == 3
