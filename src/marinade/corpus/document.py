"""What importers produce: documents, skipped records, notices, and format errors."""

from __future__ import annotations

from dataclasses import dataclass, field

from marinade.errors import MarinadeError


@dataclass
class Document:
    """One piece of the user's writing, as an importer read it (before cleaning).

    `text` may be HTML when `is_html` is set; cleaning turns it into plain text.
    `created_at` is ISO 8601 in UTC ("2023-02-18T12:33:11+00:00") or None.
    `source` is "format:file" (the file inside the archive where there is one).
    """

    text: str
    created_at: str | None
    source: str
    record_id: str | None = None
    is_reply: bool = False
    is_repost: bool = False
    language: str | None = None
    # Mastodon/Bluesky visibility: "public", "unlisted", "private" or "direct".
    visibility: str = "public"
    is_html: bool = False
    # Links the archive expands (t.co -> real address); cleaning uses them with --keep-links.
    link_targets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """A record that is merely odd (no text, a kind we don't import): counted, not fatal."""

    reason: str
    record: str | None = None


@dataclass(frozen=True)
class Notice:
    """Something odd about an input that is still imported (an old book without its END
    line): the import goes on and the report carries it as a one-line warning."""

    file: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}"


class CorpusFormatError(MarinadeError):
    """A corrupt or unreadable input: the import stops and the store is left as it was."""

    def __init__(self, file: str, record: str | None, problem: str):
        where = f"{file}, record {record}" if record is not None else file
        super().__init__(f"{where}: {problem}")
        self.file, self.record, self.problem = file, record, problem


# How a plain text file is cut into documents (`corpus import --split`).
SPLITS = {
    "separators": 'at lines of only "%", and of only "---" after a blank line; a file'
    " without them is one document",
    "paragraphs": "at blank lines: each paragraph is a document",
    "none": "never: each file is one document (a whole story or book)",
}


@dataclass(frozen=True)
class ImportOptions:
    """What the user asked for on `corpus import`; importers read the fields they need.
    An invalid value cannot exist: the check is here, before anything is read or stored."""

    keep_reposts: bool = False
    drop_replies: bool = False
    keep_links: bool = False
    keep_pii: bool = False
    dialog: bool = False  # chat and mail: whole conversations, "- " mine, "> " theirs
    me: str | None = None  # who the owner is, where an export does not say (WhatsApp)
    column: str | None = None  # CSV: the text column
    date_column: str | None = None  # CSV: an optional date column
    split: str = "separators"  # plain text: one of SPLITS
    max_record_bytes: int = 16 << 20  # corpus/limits.py: a record, or a file read whole
    max_file_bytes: int = 4 << 30  # a file, or a member of an archive

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise MarinadeError(f"unknown --split {self.split!r}: use one of {', '.join(SPLITS)}")
        if self.max_record_bytes <= 0 or self.max_file_bytes <= 0:
            raise MarinadeError("--max-record-size and --max-file-size must be positive")


def format_dialog(turns: list[tuple[bool, str]]) -> str:
    """A conversation as training text: one turn per line, "- " for the owner's
    turns and "> " for everyone else's (lines inside a turn are joined)."""
    lines = []
    for mine, text in turns:
        flat = " ".join(text.split())
        if flat:
            lines.append(("- " if mine else "> ") + flat)
    return "\n".join(lines)
