"""What the two interactive commands, `write` and `chat`, share.

Both read what the user types one line at a time, after a prompt. On a terminal that is
`input()` with readline's line editing, so a proposal to edit can be put on the line
pre-filled (`e N` in `write`); from a pipe or a file, plain lines, each echoed after its
prompt, so the output of a scripted session reads as a transcript.

Both can resume a stored story or conversation: an option left out (None) keeps the
stored value, so their sampling options have no default of their own here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer

from marinade.cli.common import out

ModelOrStored = Annotated[str | None, typer.Option("--model", "-m", help="Model name or run.")]
TopKOrStored = Annotated[int | None, typer.Option("--top-k", help="0 is off.")]
TopPOrStored = Annotated[float | None, typer.Option("--top-p", help="1 is off.")]

# Reads one line after showing a prompt, the line pre-filled for editing where it can be;
# None at the end of input.
LineReader = Callable[[str, str], "str | None"]


def line_reader(interactive: bool) -> LineReader:
    """The terminal's reader when a person types, else the transcript-echoing one."""
    return terminal_reader() if interactive else stdin_reader()


def terminal_reader() -> LineReader:
    """input() with readline's line editing; the pre-filled text can be edited in place."""
    try:
        import readline
    except ImportError:  # Windows: no pre-filling, plain input()
        readline = None  # type: ignore[assignment]

    def read(prompt: str, prefill: str) -> str | None:
        if readline is not None:
            readline.set_startup_hook(lambda: readline.insert_text(prefill))
        try:
            return input(prompt)
        except EOFError:
            out.print()
            return None
        finally:
            if readline is not None:
                readline.set_startup_hook(None)

    return read


def stdin_reader() -> LineReader:
    """Commands from a pipe or file, one a line, echoed so the output reads as a transcript."""

    def read(prompt: str, prefill: str) -> str | None:
        line = sys.stdin.readline()
        if not line:
            return None
        line = line.rstrip("\n")
        out.print(f"{prompt}{line}", markup=False)
        return line

    return read
