"""Files written whole or not at all, and TOML files read with one-line errors.

A file or folder that another process may read (a checkpoint, the converted default
model, a corpus's token cache, the weight-hash cache) is written under a temporary name
of its own beside its place and renamed in with `os.replace`: a rename within a folder
is atomic, so a crash, Ctrl-C or a full disk leaves the old one or nothing, never half
of one, and two processes writing at once each have their own partial. `partial_file`
and `partial_folder` are the two shapes of that; the block fills the path they give.

A crash can still leave traces beside the place: a partial folder (`.NAME-xxxxxxxx`) a
kill interrupted while it was being filled, and, between the two renames that replace a
folder, the old one moved aside as `.old-NAME` with nothing at NAME yet.
`in_place_or_retired` finds the folder either way; `tidy_partials`, for a writer that
knows no one else writes there now, puts a retired folder back where its place is empty
and removes the rest.

`read_toml` is how recipe and experiment files are read: a missing file, an unreadable
one and bad TOML are each one line that names the file. Imports nothing of marinade but
its error type.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from marinade.errors import MarinadeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the tomli backport, when it is installed
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None


@contextmanager
def partial_file(path: Path, prefix: str = "partial-", suffix: str = ".tmp") -> Iterator[Path]:
    """A new empty file beside `path` to write; renamed to `path` when the block ends,
    removed when it raises."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@contextmanager
def partial_folder(folder: Path, replace: bool = True) -> Iterator[Path]:
    """A new empty folder beside `folder` to fill; renamed to `folder` when the block ends,
    removed when it raises.

    With `replace`, a folder already there is moved aside, the new one renamed in and the
    old one removed. Without it, the rename fails with OSError when another process put a
    folder there first (its folder stands; the caller decides whether that is fine)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        yield partial
        if replace and folder.exists():
            retired = folder.with_name(f".old-{folder.name}")
            shutil.rmtree(retired, ignore_errors=True)
            os.replace(folder, retired)
            os.replace(partial, folder)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


RETIRED_PREFIX = ".old-"


def retired_folder(folder: Path) -> Path:
    """Where `partial_folder` moves the folder it replaces, until the new one is in."""
    return folder.with_name(f"{RETIRED_PREFIX}{folder.name}")


def in_place_or_retired(folder: Path) -> Path:
    """The folder, or its retired copy when a crash came between the two renames."""
    retired = retired_folder(folder)
    return retired if not folder.exists() and retired.is_dir() else folder


def tidy_partials(parent: Path) -> list[str]:
    """After a crash, in a folder only the caller writes to now: a retired `.old-NAME`
    goes back to NAME where NAME is missing (it is the newest complete one) and is
    removed where NAME stands; half-filled partial folders are removed. Returns what
    was done, one line each."""
    if not parent.is_dir():
        return []
    done = []
    entries = sorted(p for p in parent.iterdir() if p.name.startswith(".") and p.is_dir())
    for path in entries:
        if path.name.startswith(RETIRED_PREFIX):
            place = parent / path.name[len(RETIRED_PREFIX) :]
            if not place.exists():
                os.replace(path, place)
                done.append(f"put back {place.name} from {path.name}")
                continue
        shutil.rmtree(path, ignore_errors=True)
        done.append(f"removed {path.name}")
    return done


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file's tables; errors are one line naming the `what` ("recipe") and file."""
    if tomllib is None:
        raise MarinadeError(f"{what} files need Python 3.11+, or the tomli package on 3.10")
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise MarinadeError(f"{what} file {path} not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise MarinadeError(f"cannot read {what} file {path}: {error}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise MarinadeError(f"{path}: not valid TOML: {error}") from None
