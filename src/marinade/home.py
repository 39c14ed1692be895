"""Where marinade keeps its state: one home folder.

The home is `--home DIR` when given, else `$MARINADE_HOME`, else the platform's
user data folder. It holds the SQLite store and folders for cached models,
corpora and training runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from marinade.errors import MarinadeError

HOME_ENV = "MARINADE_HOME"


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
    try:
        for folder in (home.path, home.models, home.corpora, home.runs):
            folder.mkdir(parents=True, exist_ok=True)
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
