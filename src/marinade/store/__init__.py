"""The store: the only place with SQL. One SQLite file in the home, in WAL mode.

`db.py` opens the file (WAL, busy handling, migrations, transactions) and has no domain
queries; each area's queries are one module, named for it:

- `samples.py`: samples and what made them
- `corpora.py`: corpora, imports, documents, full-text search
- `runs.py`: training runs, evals, checkpoints (`Run`, `RunStatus`, `Eval`, `CheckpointRecord`)
- `curation.py`: ratings, experiments, automatic checks, the samples export
- `writing.py`: co-written stories and chat conversations
- `publishing.py`: accounts, the posting queue (`QueueItem`, `Claim`), fetch sources
- `review.py`: the review page's blind order, skip and undo, A/B votes
- `sheets.py`: each queue item's row in a Google Sheet (`queue sync`), and its writes

`Store` is all of them on one connection.
"""

from __future__ import annotations

from marinade.store.corpora import CorpusStore
from marinade.store.curation import EXPORT_COLUMNS, CurationStore
from marinade.store.publishing import Claim, PublishingStore, QueueItem, QueueStatus
from marinade.store.review import BLIND_PRIME, ReviewStore
from marinade.store.runs import CheckpointRecord, Eval, RatingEval, Run, RunStatus, RunStore
from marinade.store.samples import SAMPLE_COLUMNS, SampleStore
from marinade.store.sheets import SheetLink, SheetStore
from marinade.store.writing import WritingStore

__all__ = [
    "BLIND_PRIME",
    "EXPORT_COLUMNS",
    "SAMPLE_COLUMNS",
    "CheckpointRecord",
    "SheetLink",
    "Claim",
    "Eval",
    "QueueItem",
    "QueueStatus",
    "RatingEval",
    "Run",
    "RunStatus",
    "Store",
]


# SampleStore comes last: curation and review build on it (they look samples up), and a
# base class must follow the classes built on it.
class Store(
    CorpusStore,
    RunStore,
    CurationStore,
    WritingStore,
    PublishingStore,
    SheetStore,
    ReviewStore,
    SampleStore,
):
    """The store of one home: `Store(path)` opens (and migrates) it; `close()` closes it."""
