"""`marinade write`: co-write a story with a model in the terminal; `write list|export`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from marinade.cli.common import (
    LISTED_TEXT,
    CliState,
    DefaultCommandGroup,
    default_help,
    err,
    id_or_newest,
    listed_model,
    listed_time,
    load_model_for,
    or_else,
    out,
    printable,
    shorten,
    status,
    write_output,
)
from marinade.cli.generate import Device, Dtype, Quantize, unescape
from marinade.cli.session import (
    LineReader,
    ModelOrStored,
    TopKOrStored,
    TopPOrStored,
    line_reader,
)
from marinade.errors import MarinadeError
from marinade.writing import (
    EXPORT_FORMATS,
    Node,
    Story,
    WriteSettings,
    add_own_text,
    change_settings,
    choose,
    export_story,
    go_back,
    load_story,
    propose,
    random_seed,
    start_story,
)

if TYPE_CHECKING:
    from marinade.models import LoadedModel
    from marinade.store import Store

app = typer.Typer(
    cls=DefaultCommandGroup,
    help="Co-write with a model: pick among its proposals, edit, go back. "
    "`marinade write TEXT` starts a story (`write start`).",
)

HELP = (
    "[bold]N[/bold] take proposal N · [bold]e N[/bold] edit it first · [bold]m[/bold] more "
    "proposals · [bold]t TEXT[/bold] your own text · [bold]b[/bold] back a step · "
    "[bold]s[/bold] show the story · [bold]q[/bold] quit (\\n in typed text is a line break)"
)
TAIL = 300  # characters of the story shown after each step


@app.command("start")
def start(
    ctx: typer.Context,
    opening: Annotated[
        str | None, typer.Argument(help="The story's opening; asked for when left out.")
    ] = None,
    model: ModelOrStored = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume", metavar="ID", help="Go on with story ID (see `write list`), or `last`."
        ),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option(
            "--count", "-n", help=default_help(WriteSettings, "count", "Proposals per step.")
        ),
    ] = None,
    max_new_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-new-tokens",
            help=default_help(WriteSettings, "max_new_tokens", "Most tokens per proposal."),
        ),
    ] = None,
    sentence: Annotated[
        bool | None,
        typer.Option(
            "--sentence/--no-sentence",
            help="End each proposal at its first sentence end. \\[default: --sentence]",
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option("--temperature", "-t", help=default_help(WriteSettings, "temperature")),
    ] = None,
    top_k: TopKOrStored = None,
    top_p: TopPOrStored = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="The story's n-th proposal uses seed+n; random when left out."),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="\\[default: the opening]")] = None,
    auto_pick: Annotated[
        int | None,
        typer.Option("--auto-pick", help="Without asking, take proposal N at every step."),
    ] = None,
    steps: Annotated[
        int | None, typer.Option("--steps", help="With --auto-pick: how many steps.")
    ] = None,
    device: Device = None,
    quantize: Quantize = None,
    dtype: Dtype = None,
) -> None:
    """Co-write a story: the model proposes continuations, you choose, edit or write."""
    state: CliState = ctx.obj
    if opening is not None and resume is not None:
        raise MarinadeError("give an opening for a new story or --resume ID, not both")
    if (auto_pick is None) != (steps is None):
        raise MarinadeError("--auto-pick N and --steps S go together")
    if steps is not None and steps < 1:
        raise MarinadeError(f"--steps must be at least 1, not {steps}")
    store = state.store
    story = load_story(store, story_number(store, resume)) if resume is not None else None
    base = story.settings if story else WriteSettings(seed=random_seed())
    settings = WriteSettings(  # a flag given now wins over the story's stored settings
        count=or_else(count, base.count),
        max_new_tokens=or_else(max_new_tokens, base.max_new_tokens),
        temperature=or_else(temperature, base.temperature),
        top_k=or_else(top_k, base.top_k),
        top_p=or_else(top_p, base.top_p),
        sentence=or_else(sentence, base.sentence),
        seed=or_else(seed, base.seed),
    )
    if auto_pick is not None and not 1 <= auto_pick <= settings.count:
        raise MarinadeError(f"--auto-pick must be between 1 and --count ({settings.count})")
    interactive = auto_pick is None and sys.stdin.isatty()
    reader = line_reader(interactive)
    if story is None and opening is None:
        if auto_pick is not None:
            raise MarinadeError("--auto-pick needs an opening text or --resume ID")
        opening = reader("Opening: ", "")
        if not opening:
            raise MarinadeError("no opening given: nothing to write")
    loaded = load_model_for(
        state, model or (story.model if story else None), device, quantize, dtype
    )
    if story is None:
        story = start_story(store, unescape(opening) or "", loaded.name, settings, title)
    elif settings != story.settings:
        story = change_settings(store, story, settings)
    out.print(f"[bold]Story {story.id}[/bold] · {escape(story.title)} · {escape(loaded.name)}")
    show_tail(story)
    try:
        if auto_pick is not None:
            auto_write(store, story, loaded, auto_pick, steps or 1)
        else:
            converse(store, story, loaded, reader, interactive)
    except KeyboardInterrupt:  # everything chosen so far is already stored
        out.print()
    err.print(
        f"Story {story.id} is saved: `marinade write --resume {story.id}` goes on, "
        f"`marinade write export {story.id} --format md` writes it out.",
        markup=False,
        soft_wrap=True,
    )


def auto_write(store: Store, story: Story, loaded: LoadedModel, pick: int, steps: int) -> None:
    """Take proposal `pick` at every step, `steps` times (the demo's and scripts' mode)."""
    for step in range(1, steps + 1):
        proposals = proposals_at_cursor(store, story, loaded)
        if pick > len(proposals):
            raise MarinadeError(f"step {step} has {len(proposals)} proposals, not {pick}")
        choose(store, story, proposals[pick - 1].id)
        out.print(f"[dim]step {step}: took {pick}[/dim]")
    out.rule()
    out.print(printable(story.text()), markup=False)


def converse(
    store: Store, story: Story, loaded: LoadedModel, reader: LineReader, interactive: bool
) -> None:
    """The command loop: read a command, act, show what follows, until q or end of input."""
    proposals = proposals_at_cursor(store, story, loaded)
    if interactive:
        out.print(HELP, style="dim")
    while True:
        line = reader("write> ", "")
        if line is None:
            return
        command, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        try:
            if command == "q":
                return
            if command in ("", "?", "h"):
                out.print(HELP, style="dim")
                continue
            if command == "s":
                out.rule()
                out.print(printable(story.text()), markup=False)
                out.rule()
                continue
            if command == "m":
                proposals = proposals + make_proposals(store, story, loaded, first=len(proposals))
                continue
            if command == "b":
                go_back(store, story)
                show_tail(story)
                proposals = story.proposals()
                show_proposals(proposals)
                continue
            if command == "t":
                text = rest or reader("your text> ", "")
                if not text:
                    continue
                add_own_text(store, story, unescape(text) or "")
            elif command.isdigit() or command == "e":
                number = rest if command == "e" else command
                node = pick(proposals, number)
                edited = None
                if command == "e":
                    shown = node.text.replace("\n", "\\n")
                    if not interactive:
                        out.print(f"editing: {shown}", markup=False)
                    answer = reader("edit> ", shown)
                    if answer is None:
                        return
                    edited = unescape(answer)
                choose(store, story, node.id, edited)
            else:
                out.print(f"[red]unknown command {escape(command)!r}[/red]; {HELP}")
                continue
        except MarinadeError as error:
            out.print(f"[red]{escape(str(error))}[/red]")
            continue
        show_tail(story)
        proposals = proposals_at_cursor(store, story, loaded)


def pick(proposals: list[Node], number: str) -> Node:
    if not number.isdigit() or not 1 <= int(number) <= len(proposals):
        raise MarinadeError(f"choose a proposal between 1 and {len(proposals)}")
    return proposals[int(number) - 1]


def proposals_at_cursor(store: Store, story: Story, loaded: LoadedModel) -> list[Node]:
    """The proposals already made at the cursor (after going back, or on resuming), else new."""
    proposals = story.proposals()
    if proposals:
        show_proposals(proposals)
        return proposals
    return make_proposals(store, story, loaded)


def make_proposals(store: Store, story: Story, loaded: LoadedModel, first: int = 0) -> list[Node]:
    status(f"{story.settings.count} proposals from {loaded.name}…")
    new = propose(store, story, loaded)
    show_proposals(new, first_number=first + 1)
    return new


def show_proposals(proposals: list[Node], first_number: int = 1) -> None:
    for number, node in enumerate(proposals, start=first_number):
        text = printable(" ".join(node.text.split()))
        if node.text[:1] == "\n":
            text = "¶ " + text
        mark = " [dim](you)[/dim]" if node.author == "user" else f" [dim]· seed {node.seed}[/dim]"
        if node.edited:
            mark += " [dim](edited)[/dim]"
        shown = escape(text) if text else "[dim](the model ended the text here)[/dim]"
        out.print(f"[bold]{number:>3}[/bold]  {shown}{mark}")


def show_tail(story: Story) -> None:
    text = story.text()
    tail = text if len(text) <= TAIL else "…" + text[-TAIL:]
    out.rule(style="dim")
    out.print(printable(tail), markup=False)
    out.rule(style="dim")


@app.command("list")
def list_stories(ctx: typer.Context) -> None:
    """Every story, the latest first."""
    state: CliState = ctx.obj
    table = Table("id", "updated", "model", "steps", "nodes", "title", box=None)
    for row in state.store.stories():
        table.add_row(
            str(row["id"]),
            listed_time(row["updated_at"]),
            escape(listed_model(row["model"])),
            str(max(0, row["chosen"] - 1)),
            str(row["nodes"]),
            escape(printable(shorten(row["title"], LISTED_TEXT))),
        )
    out.print(table)


def story_number(store: Store, value: str) -> int:
    """A story's id as typed, or for `last` the one written most recently."""
    return id_or_newest(  # stories() lists the most recently written first
        value,
        "a story",
        store.stories,
        "there are no stories yet: `marinade write TEXT` starts one",
    )


@app.command("export")
def export(
    ctx: typer.Context,
    story_id: Annotated[str, typer.Argument(metavar="ID", help="A story's id, or `last`.")],
    export_format: Annotated[
        str, typer.Option("--format", help=f"{' or '.join(EXPORT_FORMATS)}.")
    ] = "md",
    tree: Annotated[bool, typer.Option("--tree", help="Add the branches not taken.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="A file; standard output by default.")
    ] = None,
) -> None:
    """The story's text, and with --tree the branches not taken."""
    state: CliState = ctx.obj
    text = export_story(
        load_story(state.store, story_number(state.store, story_id)), export_format, tree
    )
    write_output(text, output)
    if output is not None:
        status(f"wrote {output}")
