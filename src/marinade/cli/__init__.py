"""The `marinade` command: a thin shell over the Python API. Only cli/ prints."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from marinade.errors import MarinadeError
from marinade.store.db import busy_message, is_busy


class MarinadeGroup(TyperGroup):
    """Turns a MarinadeError anywhere below into one line on stderr and exit status 1, and
    so a busy store (another process held the write lock past the busy timeout)."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]  # typer vendors click
        try:
            return super().invoke(ctx)
        except MarinadeError as error:
            from marinade.cli.common import printable  # a file name or record may hold escapes

            typer.echo(f"Error: {printable(str(error))}", err=True)
            ctx.exit(1)
        except sqlite3.OperationalError as error:
            if not is_busy(error):
                raise
            typer.echo(f"Error: {busy_message(_store_path(ctx))}", err=True)
            ctx.exit(1)


def _store_path(ctx: typer.Context) -> str:
    """The store the command had open, for the busy line ("the store" before it opened)."""
    store = getattr(ctx.obj, "_store", None)
    return str(store.path) if store is not None else "(the home's marinade.db)"


app = typer.Typer(
    cls=MarinadeGroup,
    help="Teach a small language model your own voice, sample from it, judge the samples.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="Folder for marinade's state \\[default: $MARINADE_HOME, else the user data dir].",
        ),
    ] = None,
) -> None:
    from marinade.cli.common import CliState

    ctx.obj = CliState(home)


def _register() -> None:
    from marinade.cli import (
        accounts,
        chat,
        corpus,
        experiment,
        generate,
        glyphs,
        models,
        post,
        queue,
        retrain,
        review,
        samples,
        train,
        write,
    )

    app.command("generate")(generate.generate)
    app.command("compare")(generate.compare)
    app.command("models")(models.models)
    app.add_typer(samples.app, name="samples")
    app.add_typer(corpus.app, name="corpus")
    app.command("train")(train.train)
    app.add_typer(train.runs_app, name="runs")
    app.add_typer(experiment.app, name="experiment")
    app.add_typer(write.app, name="write")
    app.add_typer(chat.app, name="chat")
    app.command("glyphs")(glyphs.glyphs)
    app.add_typer(accounts.app, name="accounts")
    app.add_typer(queue.app, name="queue")
    app.command("post")(post.post)
    app.command("scheduler")(post.scheduler)
    app.command("retrain")(retrain.retrain)
    app.command("review")(review.review)
    app.command("serve", help="The same as `marinade review`.")(review.review)


_register()


def main() -> None:
    app()
