"""Which process holds a piece of work (a claimed queue item, an unfinished import), and
whether that process is gone: `host:pid:thread`, checked with `kill(pid, 0)` on this host."""

from __future__ import annotations

import os
import socket
import threading


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def worker_gone(worker: str | None) -> bool:
    """True when the worker's process ran on this host and no longer exists (a process on
    another host, or one this user may not signal, is taken to be alive)."""
    host, _, rest = (worker or "").partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
