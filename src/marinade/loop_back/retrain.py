"""`retrain`: what the model wrote and you kept -> a corpus -> the recipe again, as a new run.

Model-written text (posted items that came from a sample, and accepted samples) goes
into one corpus (`accepted` by default) with its source saying so (`marinade:posted`,
`marinade:accepted`), so a recipe can weight it (`mine=0.8,accepted=0.2`) or leave it
out. Texts you wrote yourself and posted through the queue go, with `own_corpus`, into
that corpus (`mine`, say) with the source `marinade:own-post`; your posts elsewhere
come back through `corpus fetch` of your own account, and posts of accounts you
admire through `corpus fetch` of theirs. The recipe then runs
as a new run, `NAME`, `NAME-2`, `NAME-3` ...: the old runs stay, to compare and to
fall back on. With `ratings_steps`, the recipe gets one more phase, `ratings:STEPS`
(training/ratings.py), that learns from the ratings given since the last retrain of
NAME, of any model's samples; when those lack accepted or rejected ones, the run trains
without it and says why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marinade.corpus.document import Document, ImportOptions
from marinade.corpus.importing import ImportReport, import_records
from marinade.errors import MarinadeError
from marinade.home import Home
from marinade.loop_back.fetch import FetchReport, fetch_all
from marinade.names import check_name
from marinade.store import QueueItem, Run, Store
from marinade.training.ratings import RatingsFilter, check_examples, select_examples
from marinade.training.recipe import RATINGS

DEFAULT_CORPUS = "accepted"


@dataclass
class RetrainReport:
    run: str
    corpus: str
    posted: int  # model-written posts imported this time
    accepted: int  # accepted samples offered (duplicates of earlier ones are not added)
    import_report: ImportReport
    fetched: list[FetchReport] = field(default_factory=list)
    own_report: ImportReport | None = None  # your own posted texts, with own_corpus
    record: Run | None = None  # the run's final record (None without training)
    ratings: int | None = None  # rated samples its ratings phase learnt from (None: no phase)


def next_run_name(store: Store, name: str) -> str:
    """NAME if no run has it, else NAME-k for one more than the highest k in use."""
    taken = {run.name for run in store.runs()}
    if name not in taken:
        return name
    numbers = [
        int(match[1])
        for other in taken
        if (match := re.fullmatch(re.escape(name) + r"-(\d+)", other))
    ]
    return f"{name}-{max(numbers, default=1) + 1}"


def _mark_key(name: str, which: str = "posted") -> str:
    return f"retrain:{name}:{which}_until"


def _posted_since_mark(
    store: Store, key: str, model_written: bool
) -> tuple[list[QueueItem], str | None]:
    """Posted items (model-written or not) not seen by the last retrain, and the new mark.

    The mark is the newest posted_at seen and the ids posted in that second, so an item
    posted in the same second as the last one seen is not missed.
    """
    value = store.publishing_value(key)
    if value and not value.startswith("{"):  # a mark written before the ids were kept
        value = json.dumps({"at": value, "ids": []})
    mark = json.loads(value or '{"at": null, "ids": []}')
    seen = set(mark["ids"])
    items = [
        item
        for item in store.posted_items(mark["at"])
        if (item.sample_id is not None) == model_written
        and not (item.posted_at == mark["at"] and item.id in seen)
    ]
    if not items:
        return items, None
    newest = max(item.posted_at or "" for item in items)
    ids = [item.id for item in items if item.posted_at == newest]
    if newest == mark["at"]:
        ids += mark["ids"]
    return items, json.dumps({"at": newest, "ids": sorted(ids)})


def _model_written(posted: list[QueueItem], accepted: list[dict[str, Any]]) -> Iterator[Document]:
    for item in posted:
        yield Document(
            text=item.text,  # without the hashtag: the model should not learn to add it
            created_at=item.posted_at,
            source="marinade:posted",
            record_id=f"queue:{item.id}",
        )
    for sample in accepted:
        yield Document(
            text=sample["text"],
            created_at=sample.get("rated_at") or sample["created_at"],
            source="marinade:accepted",
            record_id=f"sample:{sample['id']}",
        )


def _own_posts(posted: list[QueueItem]) -> Iterator[Document]:
    for item in posted:
        yield Document(
            text=item.text,
            created_at=item.posted_at,
            source="marinade:own-post",
            record_id=f"queue:{item.id}",
        )


def import_model_written(
    store: Store,
    name: str,
    corpus: str = DEFAULT_CORPUS,
    include_accepted: bool = True,
    own_corpus: str | None = None,
) -> tuple[ImportReport, int, int, ImportReport | None]:
    """Posted model-written items since the last retrain of `name`, and accepted samples,
    into `corpus`; with `own_corpus`, the texts you wrote and posted since then into
    that one. Returns the import report, the two counts and the own posts' report."""
    check_name(corpus, "corpus")
    if own_corpus is not None:
        check_name(own_corpus, "corpus")
        if own_corpus == corpus:
            raise MarinadeError(
                f"--own-corpus {own_corpus} is the corpus for model-written text; name another"
            )
    posted, posted_mark = _posted_since_mark(store, _mark_key(name), model_written=True)
    accepted = store.accepted_samples() if include_accepted else []
    # keep links and PII placeholders as the rater saw them; the text is already clean
    options = ImportOptions(keep_links=True, keep_pii=True)
    report = import_records(
        store,
        _model_written(posted, accepted),
        corpus,
        "marinade queue",
        "marinade",
        options,
    )
    if posted_mark:
        store.set_publishing_value(_mark_key(name), posted_mark)
    own_report = None
    if own_corpus is not None:  # its own mark: a first retrain with it finds every one
        own, own_mark = _posted_since_mark(store, _mark_key(name, "own"), model_written=False)
        own_report = import_records(
            store, _own_posts(own), own_corpus, "marinade queue", "marinade"
        )  # cleaned as an archive of your posts would be
        if own_mark:
            store.set_publishing_value(_mark_key(name, "own"), own_mark)
    return report, len(posted), len(accepted), own_report


def retrain(
    store: Store,
    home: Home,
    name: str,
    recipe_file: Path,
    corpus: str = DEFAULT_CORPUS,
    include_accepted: bool = True,
    own_corpus: str | None = None,
    fetch: bool = False,
    device: str | None = None,
    on_status: Callable[[str], None] | None = None,
    on_step: Callable[[Any], None] | None = None,
    ratings_steps: int | None = None,
) -> RetrainReport:
    """Fetch (optionally), import the model-written text, and train the recipe as a new run
    (with `ratings_steps`, and ratings since the last retrain, a ratings phase at its end)."""
    from marinade.training.loop import train
    from marinade.training.recipe import build_recipe, load_recipe

    if ratings_steps is not None and ratings_steps < 1:
        raise MarinadeError(f"--ratings-steps must be at least 1, not {ratings_steps}")
    file_values = load_recipe(recipe_file)  # a bad recipe fails before anything changes
    fetched = fetch_all(store) if fetch else []
    run = next_run_name(store, name)
    build_recipe(run, None, [], None, file_values, {})  # checks it before importing
    report, posted, accepted, own_report = import_model_written(
        store, name, corpus, include_accepted, own_corpus
    )
    if on_status:
        own = f"; your own posts -> {own_corpus}: {own_report.kept} new" if own_report else ""
        on_status(
            f"{posted} posts and {accepted} accepted samples -> corpus {corpus}: "
            f"{report.kept} new{own}; training run {run}"
        )
    phases: list[str] = list(file_values.get("phases", []))
    selection, rated = None, None
    if ratings_steps is not None:
        selection, rated = _new_ratings(store, name, on_status)
        if selection is not None:
            phases.append(f"ratings:{ratings_steps}")
            store.set_publishing_value(_mark_key(name, "ratings"), selection.rated_until or "")
    recipe = build_recipe(run, None, phases, None, file_values, {})
    record = train(
        store, home, recipe, device=device, on_step=on_step, on_status=on_status,
        ratings_filter=selection,
    )  # fmt: skip
    return RetrainReport(
        run, corpus, posted, accepted, report, fetched, record=record, own_report=own_report,
        ratings=rated,
    )  # fmt: skip


def _new_ratings(
    store: Store, name: str, on_status: Callable[[str], None] | None
) -> tuple[RatingsFilter | None, int | None]:
    """The ratings given since the last retrain of `name` (any model's samples), as the
    filter a `ratings` phase takes, and their number; (None, None) when they cannot make
    a phase (no accepted or no rejected ones), with a line saying so."""
    after = store.publishing_value(_mark_key(name, "ratings")) or None
    rows = store.rated_samples(rated_after=after)
    if not rows:
        if on_status:
            on_status("no ratings since the last retrain: no ratings phase this time")
        return None, None
    selection = RatingsFilter(
        rated_after=after, rated_until=max(row["rated_at"] for row in rows), any_model=True
    )
    examples = select_examples(store, RATINGS, [], selection)
    try:
        check_examples(f"{RATINGS} since the last retrain", examples)
    except MarinadeError as error:
        if on_status:
            on_status(f"{error}: no ratings phase this time")
        return None, None
    return selection, len(rows)
