"""A second process that holds a store's write lock (not a test module): what a long
import elsewhere does to every other writer."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOLD = (
    "import sqlite3, sys\n"
    "connection = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "connection.execute('begin immediate')\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()  # until the test closes our standard input\n"
    "connection.execute('rollback')\n"
)


@contextmanager
def write_lock_held(database: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holds the write lock on `database` for as long as the block runs."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "locked"
        yield process
    finally:
        if process.stdin:
            process.stdin.close()
        process.wait(timeout=30)
