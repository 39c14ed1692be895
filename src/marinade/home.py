"""Where marinade keeps its state: one home folder.

The home is `--home DIR` when given, else `$MARINADE_HOME`, else the platform's
user data folder. It holds the SQLite store and folders for cached models,
corpora and training runs.

The home is private: imported mail, chats and private messages live in it. Opening it
tightens the process's umask to 077, so the folder and everything marinade (and the
libraries it calls: SQLite, torch, transformers) creates in it is 700/600 for folders and
files. A home that already lets others in is not changed behind the user's back:
`loose_permissions` says what is open and `private_fix` the command that closes it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from marinade.errors import MarinadeError

HOME_ENV = "MARINADE_HOME"
PRIVATE_UMASK = 0o077  # no group or other bits on anything created


@dataclass(frozen=True)
class Home:
    path: Path

    @property
    def database(self) -> Path:
        return self.path / "marinade.db"

    @property
    def models(self) -> Path:
        return self.path / "models"

    @property
    def corpora(self) -> Path:
        return self.path / "corpora"

    @property
    def runs(self) -> Path:
        return self.path / "runs"


def home_path(explicit: Path | str | None = None) -> Path:
    """The home folder's path, without creating it."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    return Path(platformdirs.user_data_dir("marinade", appauthor=False))


def open_home(explicit: Path | str | None = None) -> Home:
    """The home folder, created with its sub-folders; a clear error if it cannot be written."""
    home = Home(home_path(explicit))
    make_private()
    try:
        for folder in (home.path, home.models, home.corpora, home.runs):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise MarinadeError(
            f"cannot create the home folder {home.path}: {error.strerror or error}; "
            f"pass --home DIR or set ${HOME_ENV} to a folder you can write"
        ) from None
    if not os.access(home.path, os.W_OK | os.X_OK):
        raise MarinadeError(
            f"cannot write to the home folder {home.path}; "
            f"pass --home DIR or set ${HOME_ENV} to a folder you can write"
        )
    return home


def make_private() -> None:
    """From now on this process creates files 600 and folders 700 (it only ever removes
    bits from the umask a user set)."""
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)


def loose_permissions(home: Home) -> list[str]:
    """What in the home other local users can read or enter: the folder itself, its
    database files and its first-level folders, each as "PATH (mode 755)"."""
    candidates = [home.path, home.models, home.corpora, home.runs]
    candidates += [home.database.with_name(home.database.name + end) for end in ("", "-wal")]
    found = []
    for path in candidates:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue
        if mode & 0o077:
            found.append(f"{path} (mode {mode:o})")
    return found


def private_fix(home: Home) -> str:
    """The command that makes an existing home private."""
    return f"chmod -R go-rwx {home.path}"
