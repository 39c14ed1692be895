"""`marinade corpus import|list|show|stats|export|rm`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from marinade.cli.common import (
    AsJson,
    CliState,
    err,
    for_stdout,
    json_line,
    out,
    print_json_line,
    printable,
    status,
)
from marinade.errors import MarinadeError

app = typer.Typer(
    help="Corpora: your writing, imported from export archives.", no_args_is_help=True
)

CorpusName = Annotated[str, typer.Argument(metavar="NAME", help="The corpus.")]


@app.command("import")
def import_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="An export archive (zip, tar.gz), folder or file.")],
    name: Annotated[str, typer.Option("--name", help="Corpus to import into (created if new).")],
    format: Annotated[
        str | None, typer.Option("--format", help="Force an importer (see `corpus formats`).")
    ] = None,
    keep_reposts: Annotated[
        bool, typer.Option("--keep-reposts", help="Keep retweets/boosts.")
    ] = False,
    drop_replies: Annotated[bool, typer.Option("--drop-replies", help="Drop replies.")] = False,
    keep_links: Annotated[
        bool, typer.Option("--keep-links", help="Keep links (expanded).")
    ] = False,
    keep_pii: Annotated[
        bool, typer.Option("--keep-pii", help="Keep e-mail addresses and phone numbers.")
    ] = False,
    dialog: Annotated[
        bool, typer.Option("--dialog", help="Chat and mail: conversations, '- ' mine, '> ' theirs.")
    ] = False,
    me: Annotated[
        str | None, typer.Option("--me", help="Your name or address where the export doesn't say.")
    ] = None,
    column: Annotated[str | None, typer.Option("--column", help="CSV: the text column.")] = None,
    date_column: Annotated[
        str | None, typer.Option("--date-column", help="CSV: the date column.")
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            "--split",
            help="Plain text: cut a file at lines of only % or --- (separators), at blank"
            " lines (paragraphs), or not at all (none).",
        ),
    ] = "separators",
    max_record_size: Annotated[
        str,
        typer.Option(
            "--max-record-size",
            help="Largest record (a post, a mail, a line, a document; a file some formats "
            "read whole, e.g. Telegram's result.json): 64M, 1G ...",
        ),
    ] = "16M",
    max_file_size: Annotated[
        str,
        typer.Option(
            "--max-file-size",
            "--max-member-size",
            help="Largest file, or file inside a zip or tar, read (a compressed bomb stops here).",
        ),
    ] = "4G",
    as_json: AsJson = False,
) -> None:
    """Import an archive into a corpus: cleaned, de-duplicated, all or nothing."""
    from marinade.corpus.document import ImportOptions
    from marinade.corpus.importing import import_corpus
    from marinade.corpus.limits import FILE_FLAG, RECORD_FLAG, parse_size

    state: CliState = ctx.obj
    options = ImportOptions(
        keep_reposts=keep_reposts,
        drop_replies=drop_replies,
        keep_links=keep_links,
        keep_pii=keep_pii,
        dialog=dialog,
        me=me,
        column=column,
        date_column=date_column,
        split=split,
        max_record_bytes=parse_size(max_record_size, RECORD_FLAG),
        max_file_bytes=parse_size(max_file_size, FILE_FLAG),
    )
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} records"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(f"importing {path.name}")
        report = import_corpus(
            state.store,
            path,
            name,
            format=format,
            options=options,
            on_record=lambda k: progress.advance(task, k),
        )
    for warning in report.warnings:
        err.print(Text(printable(f"warning: {warning}")), soft_wrap=True)
    if as_json:
        print_json_line(report.as_dict())
        return
    total = state.store.corpus(name)["documents"]
    out.print(
        f"{report.path} ({report.format}) -> corpus [bold]{name}[/bold]: "
        f"kept {report.kept}, {report.duplicates} duplicates, "
        f"skipped {sum(report.skipped.values())} of {report.read} records; "
        f"{total} documents in {name} now"
    )
    for reason, count in report.skipped.most_common():
        out.print(f"  skipped {count:>7}  {reason}")


@app.command("formats")
def formats_command() -> None:
    """The archive formats `corpus import` reads, in detection order."""
    from marinade.corpus.document import SPLITS
    from marinade.corpus.importers import all_importers

    for importer in all_importers():
        out.print(Text.assemble((f"{importer.name:<10}", "bold"), " ", importer.description))
    out.print("\nA plain text file is cut into documents as --split says:")
    for split, meaning in SPLITS.items():
        default = " (the default)" if split == "separators" else ""
        out.print(Text(f"  --split {split:<11} {meaning}{default}"))


@app.command("list")
def list_command(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every corpus with its document count and date range."""
    state: CliState = ctx.obj
    rows = state.store.corpora()
    if as_json:
        for row in rows:
            print_json_line(row)
        return
    table = Table("name", "documents", "first", "last", "updated", box=None)
    for row in rows:
        table.add_row(
            row["name"],
            str(row["documents"]),
            (row["first"] or "")[:10],
            (row["last"] or "")[:10],
            row["updated_at"][:16],
        )
    out.print(table)


@app.command("show")
def show_command(
    ctx: typer.Context,
    name: CorpusName,
    limit: Annotated[int, typer.Option("--limit", help="Documents to show.")] = 5,
    as_json: AsJson = False,
) -> None:
    """A corpus: its imports and its first documents."""
    state: CliState = ctx.obj
    corpus = state.store.corpus(name)
    imports = state.store.imports(name)
    documents = list(state.store.documents(name, limit=limit))
    if as_json:
        print_json_line({**corpus, "imports": imports, "documents": documents})
        return
    out.print(
        f"[bold]{name}[/bold]: {corpus['documents']} documents, created {corpus['created_at']}"
    )
    for row in imports:
        out.print(
            f"  import {row['id']}: {row['path']} ({row['format']}) at {row['imported_at']}: "
            f"kept {row['kept']}, duplicates {row['duplicates']}, skipped {row['skipped']}"
        )
    for document in documents:
        heading = f"{document['created_at'] or 'undated'}  {document['source']}"
        out.rule(Text(printable(heading), style="dim"))
        out.print(Text(printable(document["text"])))


@app.command("stats")
def stats_command(
    ctx: typer.Context,
    name: CorpusName,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            "--tokenizer", help="Count tokens with this model's tokenizer. \\[default: smollm2]"
        ),
    ] = None,
    no_tokens: Annotated[bool, typer.Option("--no-tokens", help="Skip the token count.")] = False,
    threshold: Annotated[
        float, typer.Option("--near", help="Similarity at which two documents are near-duplicates.")
    ] = 0.8,
    as_json: AsJson = False,
) -> None:
    """Documents, words, tokens, dates, lengths, languages and near-duplicates."""
    from marinade.corpus.stats import corpus_stats

    state: CliState = ctx.obj
    state.store.corpus(name)
    count_tokens = None
    tokenizer_name = None
    if not no_tokens:
        from marinade.models import DEFAULT_MODEL, load_tokenizer

        tokenizer_name = tokenizer or DEFAULT_MODEL
        loaded_tokenizer, _ = load_tokenizer(tokenizer_name, state.home, on_status=status)

        def count_tokens(texts: list[str]) -> int:
            ids = loaded_tokenizer(texts, add_special_tokens=False)["input_ids"]
            return sum(len(row) for row in ids)

    with err.status(f"reading {name}"):
        stats = corpus_stats(state.store, name, count_tokens, tokenizer_name, threshold)
    if as_json:
        print_json_line(stats.as_dict())
        return
    out.print(f"[bold]{name}[/bold]")
    out.print(f"  documents  {stats.documents}  ({stats.replies} replies)")
    out.print(f"  words      {stats.words}")
    if stats.tokens is not None:
        out.print(f"  tokens     {stats.tokens}  ({stats.tokenizer} tokenizer)")
    out.print(f"  dates      {stats.first or '-'} .. {stats.last or '-'}")
    detected = (
        f"  ({stats.languages_detected} told from the text)" if stats.languages_detected else ""
    )
    out.print(
        "  languages  " + ", ".join(f"{k} {v}" for k, v in stats.languages.items()) + detected
    )
    out.print("  length (characters):")
    widest = max(stats.lengths.values(), default=0) or 1
    for bucket, count in stats.lengths.items():
        bar = "#" * round(40 * count / widest)
        out.print(f"    {bucket:>10}  {count:>7}  {bar}")
    out.print(f"  near-duplicates (similarity >= {threshold}): {len(stats.near_duplicates)} pairs")
    for pair in stats.near_duplicates[:5]:
        out.print(
            Text(
                printable(
                    f"    {pair.similarity:.2f}  #{pair.first_id} {_short(pair.first_text)}  ~  "
                    f"#{pair.second_id} {_short(pair.second_text)}"
                )
            )
        )


@app.command("export")
def export_command(
    ctx: typer.Context,
    name: CorpusName,
    export_format: Annotated[str, typer.Option("--format", help="jsonl or txt.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File; stdout when left out.")
    ] = None,
) -> None:
    """Every document: JSON lines, or texts separated by blank lines."""
    if export_format not in ("jsonl", "txt"):
        raise MarinadeError(f"--format must be jsonl or txt, not {export_format}")
    state: CliState = ctx.obj
    state.store.corpus(name)
    handle = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        first = True
        for document in state.store.documents(name):
            if export_format == "jsonl":
                handle.write(json_line(_public(document)) + "\n")
            else:
                text = document["text"] if output else for_stdout(document["text"])
                handle.write(("" if first else "\n\n") + text)
                first = False
        if export_format == "txt" and not first:
            handle.write("\n")
    finally:
        if output:
            handle.close()


@app.command("rm")
def rm_command(
    ctx: typer.Context,
    name: CorpusName,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a corpus and its documents."""
    state: CliState = ctx.obj
    corpus = state.store.corpus(name)
    if not yes and not typer.confirm(f"Delete corpus {name} ({corpus['documents']} documents)?"):
        raise typer.Exit(1)
    removed = state.store.delete_corpus(name)
    out.print(f"deleted corpus {name} ({removed} documents)")


def _public(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "text": document["text"],
        "created_at": document["created_at"],
        "source": document["source"],
        "record_id": document["record_id"],
        "is_reply": bool(document["is_reply"]),
        "is_repost": bool(document["is_repost"]),
        "language": document["language"],
    }


def _short(text: str, width: int = 50) -> str:
    flat = " ".join(text.split())
    return flat[:width] + ("…" if len(flat) > width else "")


@app.command("fetch")
def fetch_command(
    ctx: typer.Context,
    platform: Annotated[str, typer.Argument(help="mastodon, bluesky or tumblr.")],
    account: Annotated[
        list[str],
        typer.Option(
            "--account",
            "--blog",
            help="@user@instance, a Bluesky handle or a Tumblr blog; repeat for several.",
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Corpus to fetch into, created if new \\[default: the account's name]."
        ),
    ] = None,
    instance: Annotated[
        str | None,
        typer.Option(
            "--instance",
            help="Mastodon instance, Bluesky AppView or Tumblr API to ask \\[default: @user@HOST's,"
            " else your Mastodon account's; public.api.bsky.app; api.tumblr.com].",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Posts per account at most.")] = 400,
    as_json: AsJson = False,
) -> None:
    """Fetch recent public posts of accounts into a corpus; again later, only the new ones."""
    from marinade.loop_back.fetch import default_corpus_name, fetch_posts

    state: CliState = ctx.obj
    if name is None:
        if len(account) != 1:
            raise MarinadeError("several accounts go into one corpus: give --name CORPUS")
        name = default_corpus_name(account[0])
    for handle in account:
        report = fetch_posts(state.store, platform, handle, name, instance, limit)
        imported = report.import_report
        if as_json:
            print_json_line({"account": report.account, "fetched": report.fetched,
                             "stored": report.stored, **imported.as_dict()})  # fmt: skip
            continue
        if not report.stored:
            skipped = ", ".join(f"{n} {why}" for why, n in sorted(imported.skipped.items()))
            out.print(
                f"{report.account}: nothing new"
                + (f" to keep ({skipped} skipped)" if skipped else "")
                + ("" if state.store.corpora(name) else f"; corpus {name} not created")
            )
            continue
        out.print(
            f"{report.account}: {report.fetched} new posts -> corpus [bold]{name}[/bold]: "
            f"kept {imported.kept}, {imported.duplicates} duplicates, "
            f"skipped {sum(imported.skipped.values())}",
        )
