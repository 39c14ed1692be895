"""The rating order: which sample the review page shows next, and what a key press does
to the store. (The posting queue is marinade.publishing.queue and the Queue tab.)

Samples come in a blind order: random-looking, so consecutive samples rarely share a cell
(recipe, temperature) and the rater cannot tell which cell a sample came from, yet stable,
so reopening the page continues in the same order. The order ranks each sample id by a
cubic polynomial modulo a prime whose coefficients are a hash of the experiment's name (a
4-wise independent hash family); the store evaluates it in SQL. Skipped samples come back
after every never-skipped one. Undo takes back the latest action of this page session.
Samples with chosen automatic tags (`--skip-tag empty`) can be left out of the rating queue.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from marinade.curation.prefilters import TAGS
from marinade.errors import MarinadeError
from marinade.store import BLIND_PRIME, Store
from marinade.timestamps import now_iso

ACTIONS = ("accept", "reject", "skip")


def check_skip_tags(tags: list[str]) -> tuple[str, ...]:
    """The tags to leave out of the rating queue, each one a pre-filter's tag."""
    for tag in tags:
        if tag not in TAGS:
            raise MarinadeError(f"--skip-tag {tag!r} is not an automatic tag ({', '.join(TAGS)})")
    return tuple(dict.fromkeys(tags))


def blind_order(salt: str) -> tuple[int, int, int, int]:
    """The four coefficients of the blind order for one salt (an experiment's name)."""
    digest = hashlib.sha256(f"marinade review order\0{salt}".encode()).digest()
    coefficients = [int.from_bytes(digest[i : i + 8], "big") % BLIND_PRIME for i in range(0, 32, 8)]
    coefficients[0] = coefficients[0] or 1  # keep it cubic
    return (coefficients[0], coefficients[1], coefficients[2], coefficients[3])


def blind_rank(sample_id: int, order: tuple[int, int, int, int]) -> int:
    """The same rank the store computes in SQL (for tests and for reading the code)."""
    rank = 0
    for coefficient in order:
        rank = (rank * sample_id + coefficient) % BLIND_PRIME
    return rank


@dataclass(frozen=True)
class RatingQueue:
    """The samples of one experiment (or, with None, every sample) to rate on the page,
    less those whose automatic checks gave one of `skip_tags` (they stay in the store)."""

    store: Store
    experiment: str | None = None
    skip_tags: tuple[str, ...] = ()

    @property
    def order(self) -> tuple[int, int, int, int]:
        return blind_order(self.experiment or "")

    def next_sample(self) -> dict[str, Any] | None:
        """The next unrated sample as the page may show it, or None when all are rated."""
        sample_id = self.store.next_unrated_sample_id(self.experiment, self.order, self.skip_tags)
        return None if sample_id is None else self.store.review_sample(sample_id)

    def left_out(self) -> int:
        """Unrated samples that skip_tags keeps off the page."""
        return self.store.count_unrated_with_tags(self.experiment, self.skip_tags)

    def act(
        self, session: str, sample_id: int, action: str, edited_text: str | None = None
    ) -> None:
        """Accept, reject (optionally with an edit kept beside the text) or skip a sample."""
        if action not in ACTIONS:
            raise MarinadeError(f"a review action is one of {', '.join(ACTIONS)}, not {action!r}")
        if edited_text is not None and action != "accept":
            raise MarinadeError("only an accepted sample keeps an edit")
        self.store.record_review(session, sample_id, action, edited_text=edited_text, now=now_iso())

    def undo(self, session: str) -> dict[str, Any] | None:
        """Take back the session's latest action; the sample it was about, to show again."""
        sample_id = self.store.undo_review(session)
        return None if sample_id is None else self.store.review_sample(sample_id)

    def progress(self) -> list[dict[str, Any]]:
        return self.store.review_progress(self.experiment)


@dataclass(frozen=True)
class ABPair:
    left: dict[str, Any]
    right: dict[str, Any]


def next_ab_pair(
    store: Store, experiment: str | None, rng: random.Random | None = None
) -> ABPair | None:
    """Two samples of the same prompt, seed and temperature from two models, sides shuffled."""
    ids = store.next_ab_pair(experiment, blind_order("a/b\0" + (experiment or "")))
    if ids is None:
        return None
    first, second = (store.review_sample(sample_id) for sample_id in ids)
    if (rng or random.SystemRandom()).random() < 0.5:
        first, second = second, first
    return ABPair(first, second)


def vote(store: Store, left_id: int, right_id: int, winner_id: int) -> None:
    store.add_ab_vote(left_id, right_id, winner_id, now=now_iso())
