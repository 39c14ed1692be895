"""`marinade chat`: talk with a model trained on dialog (`corpus import --dialog`)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from marinade.chat import (
    OTHERS,
    ChatSettings,
    Conversation,
    dialog_text,
    load_conversation,
    parse_side,
    say,
    start_conversation,
)
from marinade.cli.common import (
    LISTED_TEXT,
    CliState,
    DefaultCommandGroup,
    default_help,
    err,
    for_stdout,
    id_or_newest,
    listed_model,
    listed_time,
    load_model_for,
    or_else,
    out,
    printable,
    shorten,
)
from marinade.cli.generate import Device, Dtype, Quantize
from marinade.cli.session import (
    LineReader,
    ModelOrStored,
    TopKOrStored,
    TopPOrStored,
    line_reader,
)
from marinade.errors import MarinadeError
from marinade.writing import random_seed

if TYPE_CHECKING:
    from marinade.models import LoadedModel
    from marinade.store import Store

app = typer.Typer(
    cls=DefaultCommandGroup,
    help="Chat with a model trained with `corpus import --dialog`. "
    "`marinade chat` starts a conversation (`chat start`).",
)


@app.command("start")
def start(
    ctx: typer.Context,
    model: ModelOrStored = None,
    me: Annotated[
        str | None,
        typer.Option(
            "--me",
            help=default_help(
                ChatSettings,
                "me",
                "Your side: '>' (everyone but the archive's owner) or '-' (the owner).",
            ),
        ),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume", metavar="ID", help="Go on with conversation ID (`chat list`), or `last`."
        ),
    ] = None,
    max_new_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-new-tokens",
            help=default_help(ChatSettings, "max_new_tokens", "Most tokens per answer."),
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option("--temperature", "-t", help=default_help(ChatSettings, "temperature")),
    ] = None,
    top_k: TopKOrStored = None,
    top_p: TopPOrStored = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="The n-th answer uses seed+n; random when left out."),
    ] = None,
    device: Device = None,
    quantize: Quantize = None,
    dtype: Dtype = None,
) -> None:
    """Chat: your turns are written as one side of a dialog, the model answers as the other."""
    state: CliState = ctx.obj
    store = state.store
    conversation = (
        load_conversation(store, conversation_number(store, resume)) if resume is not None else None
    )
    if conversation is not None and me is not None and parse_side(me) != conversation.settings.me:
        raise MarinadeError(
            f"conversation {conversation.id} was held with --me '{conversation.settings.me}'; "
            "start a new one to change sides"
        )
    base = conversation.settings if conversation else ChatSettings(seed=random_seed())
    settings = ChatSettings(  # a flag given now wins over the conversation's stored settings
        me=parse_side(me) if me is not None else base.me,
        max_new_tokens=or_else(max_new_tokens, base.max_new_tokens),
        temperature=or_else(temperature, base.temperature),
        top_k=or_else(top_k, base.top_k),
        top_p=or_else(top_p, base.top_p),
        seed=or_else(seed, base.seed),
    )
    stored_model = conversation.model if conversation else None
    loaded = load_model_for(state, model or stored_model, device, quantize, dtype)
    if conversation is None:
        conversation = start_conversation(store, loaded.name, settings)
    else:
        conversation.settings = settings  # for this session; the stored ones stay
        if conversation.turns:
            out.print(printable(dialog_text(conversation.turns, settings)), markup=False)
    interactive = sys.stdin.isatty()
    if interactive:
        side = "the archive's owner" if settings.me != OTHERS else "the other side"
        out.print(
            f"[dim]Conversation {conversation.id} with {escape(loaded.name)}: you write as "
            f"'{settings.me}' ({side}), it answers as '{settings.model_side}'. "
            "Ctrl-D or /quit to stop.[/dim]"
        )
    reader = line_reader(interactive)
    try:
        talk(store, conversation, loaded, reader)
    except KeyboardInterrupt:  # every turn so far is already stored
        out.print()
    err.print(
        f"Conversation {conversation.id} is saved: `marinade chat show {conversation.id}`, "
        f"`marinade chat --resume {conversation.id}`.",
        markup=False,
        soft_wrap=True,
    )


def talk(store: Store, conversation: Conversation, loaded: LoadedModel, reader: LineReader) -> None:
    prompt = f"{conversation.settings.me} "
    while True:
        line = reader(prompt, "")
        if line is None or line.strip() in ("/quit", "/q"):
            return
        if not line.strip():
            continue
        try:
            answer = say(store, conversation, loaded, line)
        except MarinadeError as error:
            out.print(f"[red]{escape(str(error))}[/red]")
            continue
        if not answer.text:  # stored as it is; a --dialog corpus would hold no such line
            out.print(
                f"{conversation.settings.model_side} [dim](no answer: it ended its turn)[/dim]"
            )
            continue
        out.print(f"{conversation.settings.model_side} {printable(answer.text)}", markup=False)


def conversation_number(store: Store, value: str) -> int:
    """A conversation's id as typed, or for `last` the one held most recently."""
    return id_or_newest(  # conversations() lists the most recently held first
        value,
        "a conversation",
        store.conversations,
        "there are no conversations yet: `marinade chat` starts one",
    )


@app.command("list")
def list_conversations(ctx: typer.Context) -> None:
    """Every conversation, the latest first."""
    state: CliState = ctx.obj
    table = Table("id", "updated", "model", "me", "turns", "opening", box=None)
    for row in state.store.conversations():
        table.add_row(
            str(row["id"]),
            listed_time(row["updated_at"]),
            escape(listed_model(row["model"])),
            row["me"],
            str(row["turns"]),
            escape(printable(shorten(row["opening"] or "", LISTED_TEXT))),
        )
    out.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    conversation_id: Annotated[
        str, typer.Argument(metavar="ID", help="A conversation's id, or `last`.")
    ],
) -> None:
    """A conversation as dialog lines, as a --dialog corpus would hold it."""
    state: CliState = ctx.obj
    conversation = load_conversation(state.store, conversation_number(state.store, conversation_id))
    text = dialog_text(conversation.turns, conversation.settings)
    sys.stdout.write(for_stdout(text) + ("\n" if text else ""))
