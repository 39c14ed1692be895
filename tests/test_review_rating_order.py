"""The rating order: blind order across cells, skip, undo, A/B pairs (no server)."""

from __future__ import annotations

import random

import pytest

from marinade.errors import MarinadeError
from marinade.review.rating_order import RatingQueue, blind_order, blind_rank, next_ab_pair, vote
from review_helpers import add_grid


def rate_through(queue: RatingQueue, session: str = "s1") -> list[int]:
    shown = []
    while (sample := queue.next_sample()) is not None:
        shown.append(sample["id"])
        queue.act(session, sample["id"], "accept")
    return shown


def test_blind_order_mixes_cells_and_is_stable(store):
    rows = add_grid(store, recipes=("a", "b", "c", "d"), temperatures=(0.7,), seeds=25)
    recipe_of = {row["id"]: row["recipe"] for row in rows}
    queue = RatingQueue(store, "grid")
    first = queue.next_sample()
    assert first is not None and queue.next_sample() == first  # stable until rated
    shown = rate_through(queue)
    assert sorted(shown) == sorted(recipe_of)
    # the store's SQL ranks like the Python reference
    order = blind_order("grid")
    assert shown == sorted(recipe_of, key=lambda i: (blind_rank(i, order), i))
    # cells are inserted one after another; the blind order interleaves them
    recipes = [recipe_of[i] for i in shown]
    assert len(set(recipes[:12])) == 4
    switches = sum(a != b for a, b in zip(recipes, recipes[1:], strict=False))
    assert switches > 50  # a cell-by-cell order would switch 3 times
    assert blind_order("grid") != blind_order("other")  # a salt per experiment


def test_experiment_scope_and_progress(store):
    add_grid(store, experiment="grid", seeds=2)
    add_grid(store, experiment="other", seeds=1)
    queue = RatingQueue(store, "other")
    assert queue.next_sample()["experiment"] == "other"
    assert len(rate_through(queue)) == 4
    assert queue.progress() == [{"experiment": "other", "total": 4, "rated": 4, "accepted": 4}]
    everything = RatingQueue(store).progress()
    assert [(row["experiment"], row["rated"], row["total"]) for row in everything] == [
        ("grid", 0, 8),
        ("other", 4, 4),
    ]


def test_skipped_samples_come_back_after_the_rest(store):
    add_grid(store, seeds=2)  # 8 samples
    queue = RatingQueue(store, "grid")
    skipped = queue.next_sample()["id"]
    queue.act("s1", skipped, "skip")
    later = rate_through_until(queue, skipped)
    assert len(later) == 7 and skipped not in later
    queue.act("s1", skipped, "reject")
    assert queue.next_sample() is None
    assert store.rating(skipped)["rating"] == "reject"


def rate_through_until(queue: RatingQueue, stop_at: int) -> list[int]:
    shown = []
    while (sample := queue.next_sample())["id"] != stop_at:
        shown.append(sample["id"])
        queue.act("s1", sample["id"], "accept")
    return shown


def test_undo_takes_back_this_sessions_latest_action(store):
    first, second, third, *_ = add_grid(store, seeds=1)
    store.rate_sample(first["id"], "reject", tags=["dull"], note="meh", now="t0")
    queue = RatingQueue(store, "grid")
    queue.act("mine", first["id"], "accept", edited_text="better")
    queue.act("mine", second["id"], "skip")
    queue.act("theirs", second["id"], "accept")
    assert queue.undo("mine")["id"] == second["id"]  # the skip, not the other session's rating
    assert store.rating(second["id"])["rating"] == "accept"
    assert queue.undo("mine")["id"] == first["id"]
    restored = store.rating(first["id"])  # the rating the page replaced is back
    assert (restored["rating"], restored["tags"], restored["note"]) == ("reject", ["dull"], "meh")
    assert restored["edited_text"] is None
    assert queue.undo("mine") is None
    queue.act("mine", third["id"], "reject")
    queue.undo("mine")
    assert store.rating(third["id"]) is None  # unrated before: unrated again


def test_bad_actions_are_one_line_errors(store):
    (sample, *_) = add_grid(store, seeds=1)
    queue = RatingQueue(store, "grid")
    with pytest.raises(MarinadeError, match="accept, reject, skip"):
        queue.act("s", sample["id"], "maybe")
    with pytest.raises(MarinadeError, match="no sample with id 999"):
        queue.act("s", 999, "accept")
    with pytest.raises(MarinadeError, match="only an accepted sample keeps an edit"):
        queue.act("s", sample["id"], "reject", edited_text="x")


def test_ab_pairs_share_prompt_seed_and_temperature_across_models(store):
    rows = add_grid(store, recipes=("a", "b", "c"), temperatures=(0.7, 1.1), seeds=2)
    add_grid(store, recipes=("a", "b"), temperatures=(0.7,), seeds=2, prompt="Other")
    by_id = {row["id"]: row for row in rows}
    seen = set()
    rng = random.Random(0)
    sides = set()
    while (pair := next_ab_pair(store, "grid", rng)) is not None:
        left, right = (store.get_sample(pair.left["id"]), store.get_sample(pair.right["id"]))
        assert left["model"] != right["model"]
        assert (left["prompt"], left["seed"], left["temperature"]) == (
            right["prompt"],
            right["seed"],
            right["temperature"],
        )
        key = frozenset((left["id"], right["id"]))
        assert key not in seen
        seen.add(key)
        sides.add(left["model"] < right["model"])
        vote(store, left["id"], right["id"], left["id"])
    # 3 pairs for each of 4 seed-temperatures of "Dear diary,", 1 for each of 2 of "Other"
    assert len(seen) == 14 and sides == {True, False}
    results = store.ab_results("grid")
    assert [(r["model_a"], r["model_b"], r["votes"]) for r in results] == [
        ("run-a", "run-b", 6),
        ("run-a", "run-c", 4),
        ("run-b", "run-c", 4),
    ]
    assert all(r["wins_a"] + r["wins_b"] == r["votes"] for r in results)
    assert len(by_id) == 12
    with pytest.raises(MarinadeError, match="winner"):
        vote(store, rows[0]["id"], rows[1]["id"], rows[2]["id"])


def test_ab_pairs_never_mix_top_p_values(store):
    add_grid(store, recipes=("a",), temperatures=(0.7,), seeds=1, top_p=0.9)
    add_grid(store, recipes=("b",), temperatures=(0.7,), seeds=1, top_p=None)
    assert next_ab_pair(store, "grid") is None  # same prompt, seed, temperature; not top-p
    add_grid(store, recipes=("c",), temperatures=(0.7,), seeds=1, top_p=0.9)
    pair = next_ab_pair(store, "grid")
    assert pair is not None
    models = {store.get_sample(side["id"])["model"] for side in (pair.left, pair.right)}
    assert models == {"run-a", "run-c"}
