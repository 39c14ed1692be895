"""The importer registry: one module per export format, found automatically.

Each module in this package defines `IMPORTER = Importer(...)`. Detection asks
every importer, highest `priority` first, whether it recognises the input by
its content (file names inside an archive, the first bytes of a file); plain
text has the lowest priority and takes what nothing else claims.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from marinade.corpus.archive import Archive
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Notice, Skipped
from marinade.registry import defined_in_modules

# What an importer yields: documents, records it skipped (counted by reason), and notices
# about the input as a whole (reported once as warnings).
Records = Iterator[Document | Skipped | Notice]


@dataclass(frozen=True)
class Importer:
    name: str  # what --format takes
    description: str  # one line for `corpus import --help` and errors
    detect: Callable[[Archive], bool]
    read: Callable[[Archive, ImportOptions], Records]
    priority: int = 50  # detection order: higher first; plain text is 0


def all_importers() -> list[Importer]:
    """Every importer module's IMPORTER, highest priority first."""
    found = defined_in_modules(__name__, __path__, "IMPORTER", Importer)
    return sorted(found, key=lambda i: (-i.priority, i.name))


def importer_named(name: str) -> Importer:
    importers = all_importers()
    for importer in importers:
        if importer.name == name:
            return importer
    names = ", ".join(sorted(i.name for i in importers))
    raise CorpusFormatError(name, None, f"unknown --format; use one of {names}")


def detect_importer(archive: Archive) -> Importer:
    for importer in all_importers():
        if importer.detect(archive):
            return importer
    raise CorpusFormatError(
        str(archive.path), None, "unknown format: no importer recognises it (try --format)"
    )
