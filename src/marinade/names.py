"""What a name may be: corpora, runs, accounts, experiments and their recipes.

One rule for all of them: letters, digits, '_', '.' and '-', starting with a letter,
digit or '_' (`\\w`). Such a name is safe as a folder name (runs live in
`HOME/runs/RUN`), in a URL and on a command line, and `RUN@PHASE` can name a phase's
checkpoint without ambiguity. The whole text must match: a trailing newline is not a
name. Imports nothing of marinade but its error type.
"""

from __future__ import annotations

import re

from marinade.errors import MarinadeError

NAME = r"[\w][\w.-]*"  # the pattern's text, for patterns that contain a name
RUN_AT_PHASE = re.compile(rf"(?P<run>{NAME})(?:@(?P<phase>[0-9]+))?")  # RUN or RUN@PHASE


def is_name(text: str) -> bool:
    """Whether `text` is a valid name, as a whole."""
    return re.fullmatch(NAME, text) is not None


def check_name(name: str, what: str) -> None:
    """Raise the one-line error for a bad name of a `what` ("corpus", "experiment", ...)."""
    if not is_name(name):
        raise MarinadeError(
            f"bad {what} name {name!r}: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit"
        )
