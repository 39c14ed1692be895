"""What every command shares: the home and store, opened on first use, and the consoles."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from typer.core import TyperGroup

from marinade.errors import MarinadeError
from marinade.home import Home, loose_permissions, open_home, private_fix
from marinade.store import Store

if TYPE_CHECKING:
    from marinade.models import LoadedModel

# No emoji codes or highlighting: sample texts are printed as they are.
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)


AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def print_json_line(value: Any) -> None:
    """One JSON object on one line of stdout, never touched by rich."""
    sys.stdout.write(json_line(value) + "\n")


def json_line(value: Any) -> str:
    """`value` as JSON on one line, non-ASCII text as it is. JSON escapes C0 controls
    itself; DEL and the C1 controls (U+009B is an escape to some terminals) are escaped
    here too, which reads back as the same value."""
    return C1.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False))


class CliState:
    def __init__(self, home_option: Path | None):
        self.home_option = home_option
        self._home: Home | None = None
        self._store: Store | None = None

    @property
    def home(self) -> Home:
        if self._home is None:
            self._home = open_home(self.home_option)
            loose = loose_permissions(self._home)
            if loose:
                err.print(
                    f"warning: other users can read your marinade home: {loose[0]}"
                    + (f" and {len(loose) - 1} more" if len(loose) > 1 else "")
                    + f"; run `{private_fix(self._home)}`",
                    markup=False,
                    soft_wrap=True,
                )
        return self._home

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.home.database)
        return self._store


def status(message: str) -> None:
    err.print(f"[dim]{message}[/dim]")


def load_model_for(
    state: CliState,
    name: str | None,
    device: str | None,
    quantize: str | None,
    dtype: str | None = None,
) -> LoadedModel:
    """marinade.models.load_model, saying on stderr what it does; it imports torch and
    transformers when called (seconds), so a command's --help stays quick."""
    from marinade.models import load_model

    return load_model(
        name, state.home, device=device, quantize=quantize, on_status=status, dtype=dtype
    )


def write_output(text: str, output: Path | None) -> None:
    """The text to --output FILE, else to standard output; a file that cannot be written
    is a one-line error."""
    if output is None:
        sys.stdout.write(for_stdout(text))
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise MarinadeError(f"cannot write {output}: {error.strerror}") from None


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Progress]:
    """A progress bar on stderr; `advance(progress, k)` as k more units of work are done."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:
        progress.add_task(description, total=total)
        yield progress


def advance(progress: Progress, count: int) -> None:
    progress.advance(progress.task_ids[0], count)


def default_help(settings: type[Any], name: str, text: str = "") -> str:
    """An option's help `text` ending in `[default: VALUE]`, VALUE being the default of field
    `name` of the settings dataclass, so the help cannot drift from the value used. The
    bracket is escaped: rich would read it as markup and drop it."""
    value = {field.name: field.default for field in dataclasses.fields(settings)}[name]
    # 5e-05 as one would type it: 5e-5
    shown = re.sub(r"e([+-])0+(?=\d)", r"e\1", repr(value)) if isinstance(value, float) else value
    return f"{text} \\[default: {shown}]".lstrip()


T = TypeVar("T")


def or_else(value: T | None, fallback: T) -> T:
    """An option's value when it was given (not None), else the fallback."""
    return fallback if value is None else value


def id_or_last(value: str, what: str) -> int | None:
    """A record id as typed, or None for `last` (the newest), as scripts and the demo use."""
    if value == "last":
        return None
    if not value.isdigit():
        raise MarinadeError(f"{what} must be a number or `last`, not {value!r}")
    return int(value)


def id_or_newest(
    value: str, what: str, newest_first: Callable[[], list[dict[str, Any]]], none_yet: str
) -> int:
    """A record id as typed, or for `last` the id of the first row of `newest_first()`
    (`none_yet` is the error when there is none)."""
    number = id_or_last(value, what)
    if number is not None:
        return number
    rows = newest_first()
    if not rows:
        raise MarinadeError(none_yet)
    return int(rows[0]["id"])


class DefaultCommandGroup(TyperGroup):
    """A command group whose `start` command may be left out: `marinade write "Once"` runs
    `marinade write start "Once"`, while `marinade write list` runs `list`."""

    default_command = "start"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # type: ignore[override]
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


# Lists shorten long cells themselves: rich squeezes the other columns of a table to
# nothing (ids included) when a no-wrap column is too wide for a narrow or piped terminal.
LISTED_TEXT = 60
LISTED_MODEL = 24


def shorten(text: str, length: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= length else flat[: length - 1] + "…"


def listed_model(model: str) -> str:
    """A model's name, or the end of a long path (the folder's own name is the telling part)."""
    return model if len(model) <= LISTED_MODEL else "…" + model[-(LISTED_MODEL - 1) :]


def listed_time(iso: str | None) -> str:
    return (iso or "")[:16].replace("T", " ")


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
C1 = re.compile(r"[\x7f-\x9f]")


def printable(text: str) -> str:
    """Control characters a model wrote or an archive held (an escape could restyle or
    clear the terminal) shown as their Unicode pictures (␀, ␛, ␡); line breaks and tabs
    stay. Every place that prints model or imported text goes through this."""
    return CONTROL.sub(_control_picture, text)


def for_stdout(text: str) -> str:
    """Text as data for standard output: exact into a pipe or file, printable() when
    standard output is a terminal."""
    return printable(text) if sys.stdout.isatty() else text


def _control_picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    return "\u2421" if code == 0x7F else "\ufffd"
