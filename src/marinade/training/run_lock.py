"""Whether a run's training process is alive: a lock file it holds while it trains.

The store says `running` from a run's first step to its last; a process that is killed
(SIGKILL, the out-of-memory killer, a power cut) cannot say anything more, so the store
alone would show it running forever. While it trains, the main process holds an
exclusive lock on `HOME/runs/RUN/training.lock` (filelock: `flock` on POSIX, `LockFileEx`
on Windows). The operating system drops the lock with the process, however it ends, so
"recorded running and the lock is free" means the process is gone. The same lock keeps a
second `train --resume` of the run from training it at the same time as the first, and
lets a new start remove what a killed one left half-written (training/checkpoints.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from marinade.errors import MarinadeError
from marinade.home import Home
from marinade.training.checkpoints import run_folder

LOCK_FILE = "training.lock"


def lock_path(home: Home, run: str) -> Path:
    return run_folder(home, run) / LOCK_FILE


@contextmanager
def training_lock(home: Home, run: str) -> Iterator[None]:
    """Hold the run's lock while the block trains it; a run another process is training
    now is a one-line error."""
    path = lock_path(home, run)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=2)  # a moment: `runs show` may be testing the lock just now
    try:
        lock.acquire()
    except Timeout:
        raise MarinadeError(
            f"run {run} is being trained by another process right now; wait for it to end "
            "or stop it (Ctrl-C saves a checkpoint), then --resume"
        ) from None
    try:
        yield
    finally:
        lock.release()


def is_training(home: Home, run: str) -> bool:
    """Whether a live process holds the run's lock (is training it now)."""
    path = lock_path(home, run)
    if not path.exists():
        return False
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    lock.release()
    return False
