"""A throwaway home for a benchmark, seeded from --home so a converted model is reused."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from marinade.home import Home, open_home
from marinade.store import Store


@contextmanager
def scratch_home(seed_from: Path | None) -> Iterator[tuple[Home, Store]]:
    """A home in a temporary folder (a copy of `seed_from` when given) and its store."""
    with tempfile.TemporaryDirectory() as folder:
        home = Home(Path(folder) / "home")
        if seed_from:
            shutil.copytree(seed_from, home.path)
        home = open_home(home.path)
        yield home, Store(home.database)
