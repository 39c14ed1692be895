"""`retrain`: what the model wrote and you kept -> a corpus -> the recipe again, as a new run.

Model-written text (posted items that came from a sample, and accepted samples) goes
into one corpus (`accepted` by default) with its source saying so (`marinade:posted`,
`marinade:accepted`), so a recipe can weight it (`mine=0.8,accepted=0.2`) or leave it
out. Your own recent posts come back through `corpus fetch` of your own account, and
posts of accounts you admire through `corpus fetch` of theirs. The recipe then runs
as a new run, `NAME`, `NAME-2`, `NAME-3` ...: the old runs stay, to compare and to
fall back on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marinade.corpus.document import Document, ImportOptions
from marinade.corpus.importing import ImportReport, check_corpus_name, import_records
from marinade.home import Home
from marinade.publishing.fetch import FetchReport, fetch_all
from marinade.store import Store

DEFAULT_CORPUS = "accepted"


@dataclass
class RetrainReport:
    run: str
    corpus: str
    posted: int  # model-written posts imported this time
    accepted: int  # accepted samples offered (duplicates of earlier ones are not added)
    import_report: ImportReport
    fetched: list[FetchReport] = field(default_factory=list)
    record: dict[str, Any] | None = None  # the run's final record (None without training)


def next_run_name(store: Store, name: str) -> str:
    """NAME if no run has it, else NAME-k for one more than the highest k in use."""
    taken = {run["name"] for run in store.runs()}
    if name not in taken:
        return name
    numbers = [
        int(match[1])
        for other in taken
        if (match := re.fullmatch(re.escape(name) + r"-(\d+)", other))
    ]
    return f"{name}-{max(numbers, default=1) + 1}"


def _mark_key(name: str) -> str:
    return f"retrain:{name}:posted_until"


def _model_written(
    posted: list[dict[str, Any]], accepted: list[dict[str, Any]]
) -> Iterator[Document]:
    for item in posted:
        yield Document(
            text=item["text"],  # without the hashtag: the model should not learn to add it
            created_at=item["posted_at"],
            source="marinade:posted",
            record_id=f"queue:{item['id']}",
        )
    for sample in accepted:
        yield Document(
            text=sample["text"],
            created_at=sample.get("rated_at") or sample["created_at"],
            source="marinade:accepted",
            record_id=f"sample:{sample['id']}",
        )


def import_model_written(
    store: Store, name: str, corpus: str = DEFAULT_CORPUS, include_accepted: bool = True
) -> tuple[ImportReport, int, int]:
    """Posted model-written items since the last retrain of `name`, and accepted samples,
    into `corpus`; returns the import report and the two counts."""
    check_corpus_name(corpus)
    since = store.publishing_value(_mark_key(name))
    posted = [item for item in store.posted_items(since) if item["sample_id"] is not None]
    accepted = store.accepted_samples() if include_accepted else []
    newest = max((item["posted_at"] for item in posted), default=since)
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
    if newest:
        store.set_publishing_value(_mark_key(name), newest)
    return report, len(posted), len(accepted)


def retrain(
    store: Store,
    home: Home,
    name: str,
    recipe_file: Path,
    corpus: str = DEFAULT_CORPUS,
    include_accepted: bool = True,
    fetch: bool = False,
    device: str | None = None,
    on_status: Callable[[str], None] | None = None,
    on_step: Callable[[Any], None] | None = None,
) -> RetrainReport:
    """Fetch (optionally), import the model-written text, and train the recipe as a new run."""
    from marinade.training.loop import train
    from marinade.training.recipe import build_recipe, load_recipe

    file_values = load_recipe(recipe_file)  # a bad recipe fails before anything changes
    fetched = fetch_all(store) if fetch else []
    run = next_run_name(store, name)
    build_recipe(run, None, [], None, file_values, {})  # checks it before importing
    report, posted, accepted = import_model_written(store, name, corpus, include_accepted)
    if on_status:
        on_status(
            f"{posted} posts and {accepted} accepted samples -> corpus {corpus}: "
            f"{report.kept} new; training run {run}"
        )
    recipe = build_recipe(run, None, [], None, file_values, {})
    record = train(store, home, recipe, device=device, on_step=on_step, on_status=on_status)
    return RetrainReport(run, corpus, posted, accepted, report, fetched, record)
