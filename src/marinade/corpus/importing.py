"""Import an archive into a named corpus: read, clean, de-duplicate, store — all or nothing."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import clean, dedup_key
from marinade.corpus.document import (
    CorpusFormatError,
    Document,
    ImportOptions,
    Notice,
    Skipped,
)
from marinade.corpus.importers import detect_importer, importer_named
from marinade.errors import MarinadeError
from marinade.names import check_name
from marinade.processes import worker_gone, worker_id
from marinade.store import Store
from marinade.timestamps import now_iso

BATCH = 1000  # documents per insert, each batch one short transaction (~0.1 s)


@dataclass
class ImportReport:
    corpus: str
    path: str
    format: str
    read: int = 0  # records the importer produced, documents and skipped ones
    kept: int = 0
    duplicates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)  # one line each, "file: problem"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "skipped": dict(self.skipped)}


def import_corpus(
    store: Store,
    path: Path | str,
    name: str,
    format: str | None = None,
    options: ImportOptions | None = None,
    on_record: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import `path` into corpus `name` (created if new, added to if not).

    All or nothing (`import_records`): a CorpusFormatError anywhere leaves the store
    exactly as it was. Documents already in the corpus (same text up to
    whitespace and case) are counted as duplicates, not added again.
    """
    options = options or ImportOptions()
    check_name(name, "corpus")
    path = Path(path).expanduser()
    if not path.exists():
        raise CorpusFormatError(str(path), None, "no such file or folder")
    if path.is_file() and path.stat().st_size == 0:
        raise CorpusFormatError(str(path), None, "empty file")
    archive = Archive(path, options.max_record_bytes, options.max_file_bytes)
    try:
        importer = importer_named(format) if format else detect_importer(archive)
        left_out = [Skipped(why, member) for member, why in archive.left_out]
        return import_records(
            store,
            itertools.chain(left_out, importer.read(archive, options)),
            name,
            str(path.resolve()),
            importer.name,
            options,
            on_record,
        )
    finally:
        archive.close()


def import_records(
    store: Store,
    records: Iterable[Document | Skipped | Notice],
    name: str,
    path: str,
    format: str,
    options: ImportOptions | None = None,
    on_record: Callable[[int], None] | None = None,
    also_store: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Clean, de-duplicate and store records from any source (an archive, an API) in
    corpus `name`, all or nothing; `also_store` writes more in the last transaction,
    knowing what was kept (an exception it raises stores nothing at all).

    The documents go in `BATCH` at a time, each batch its own short transaction, so other
    writers (`queue add`, the review page, another import) wait a fraction of a second,
    never for the whole import. The import is marked unfinished (its `worker`) until the
    last transaction, and its documents are not shown until then; if it fails, or is
    stopped, they are taken out again, and an import whose process died is taken out by
    the next import into the same corpus."""
    options = options or ImportOptions()
    check_name(name, "corpus")
    report = ImportReport(corpus=name, path=path, format=format)
    with store.transaction():
        _remove_abandoned(store, name)
        import_id = store.start_import(
            name, report.path, format, json.dumps(asdict(options)), now_iso(), worker_id()
        )
    try:
        pending: list[dict[str, Any]] = []
        for record in records:
            if isinstance(record, Notice):
                report.warnings.append(str(record))
                continue
            report.read += 1
            if on_record:
                on_record(1)
            if isinstance(record, Skipped):
                report.skipped[record.reason] += 1
                continue
            document, reason = clean(record, options)
            if document is None:
                report.skipped[reason or "dropped"] += 1
                continue
            pending.append(_row(document, name, import_id))
            if len(pending) >= BATCH:
                with store.transaction():
                    _flush(store, pending, report)
        with store.transaction():
            _flush(store, pending, report)
            store.finish_import(
                import_id, report.kept, report.duplicates, json.dumps(dict(report.skipped))
            )
            if also_store:
                also_store(report)
    except BaseException:  # an error, Ctrl-C or SIGTERM: the store as it was before
        store.remove_import(import_id)
        raise
    return report


def _remove_abandoned(store: Store, corpus: str) -> None:
    """Take out imports into `corpus` whose process died; refuse while one is running (two
    at once would each count the other's documents as duplicates)."""
    for unfinished in store.unfinished_imports(corpus):
        if not worker_gone(unfinished["worker"]):
            raise MarinadeError(
                f"corpus {corpus} is being imported into by another process"
                f" ({unfinished['worker']}, from {unfinished['path']}); run this import"
                " when that one is done"
            )
        store.remove_import(unfinished["id"])


def _row(document: Document, corpus: str, import_id: int) -> dict[str, Any]:
    return {
        "corpus": corpus,
        "import_id": import_id,
        "text": document.text,
        "created_at": document.created_at,
        "source": document.source,
        "record_id": document.record_id,
        "is_reply": int(document.is_reply),
        "is_repost": int(document.is_repost),
        "language": document.language,
        "dedup_key": dedup_key(document.text),
    }


def _flush(store: Store, pending: list[dict[str, Any]], report: ImportReport) -> None:
    if pending:
        new = store.add_documents(pending)
        report.kept += new
        report.duplicates += len(pending) - new
        pending.clear()
