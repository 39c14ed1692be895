"""Stop signals: SIGTERM and SIGHUP stop long work the way Ctrl-C does.

Long CPU trainings run under systemd, cron, tmux or containers, where the stop
signal is SIGTERM (or SIGHUP when the terminal goes away), not Ctrl-C. While
`interrupt_on_stop_signals()` is active, the first SIGTERM, SIGHUP or SIGINT
raises `Stopped` (a KeyboardInterrupt), so `train`, `experiment run` and
`retrain` save a resumable checkpoint and mark the run interrupted exactly as
for Ctrl-C; a second one exits at once. SIGINT is left alone where it arrives
ignored (a job started in the background of a script), so SIGTERM still works
there. The scheduler wants to finish the post it is sending instead:
`stop_requested_by_signals()` only notes the first signal, and a second one
raises.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from marinade.errors import Stopped

STOP_SIGNALS = ("SIGTERM", "SIGHUP", "SIGINT")


@contextmanager
def interrupt_on_stop_signals() -> Iterator[Callable[[], None]]:
    """The first stop signal raises Stopped where the work is; a second exits at once.

    Yields a check for the work to call between its steps: Python swallows an
    exception raised where it cannot propagate (a `__del__`, a callback from C code,
    printed as "Exception ignored"), and the check raises Stopped again then."""
    received: list[tuple[str, int]] = []

    def stopped() -> Stopped:
        name, number = received[0]
        return Stopped("Ctrl-C" if name == "SIGINT" else name, 128 + number)

    def handler(number: int, frame: FrameType | None) -> None:
        if received:
            os._exit(128 + number)  # already stopping (saving a checkpoint): stop now
        received.append((signal.Signals(number).name, number))
        raise stopped()

    def check() -> None:
        if received:
            raise stopped()

    with _handlers(handler):
        yield check


class StopRequest:
    """Set by the first stop signal; what the scheduler checks between posts."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def __bool__(self) -> bool:
        return self.signal_name is not None


@contextmanager
def stop_requested_by_signals() -> Iterator[StopRequest]:
    """The first stop signal only sets the request (the post being sent is finished);
    a second one raises Stopped at once."""
    request = StopRequest()

    def handler(number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if request:
            raise Stopped(name, 128 + number)
        request.signal_name = name

    with _handlers(handler):
        yield request


@contextmanager
def _handlers(handler: Any) -> Iterator[None]:
    installed: dict[signal.Signals, Any] = {}
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)  # Windows has no SIGHUP
        if number is None:
            continue
        previous = signal.getsignal(number)
        if number == signal.SIGINT and previous == signal.SIG_IGN:
            continue  # started in the background of a script: SIGTERM will do
        installed[number] = previous
        signal.signal(number, handler)
    try:
        yield
    finally:
        for number, previous in installed.items():
            signal.signal(number, previous)


def stopped_by(stop: KeyboardInterrupt) -> str:
    """'interrupted' after Ctrl-C, 'stopped by SIGTERM' after a signal."""
    if isinstance(stop, Stopped) and stop.signal_name != "Ctrl-C":
        return f"stopped by {stop.signal_name}"
    return "interrupted"


def exit_code(stop: KeyboardInterrupt) -> int:
    """130 after Ctrl-C, 128 + the signal's number after another stop signal."""
    return stop.exit_code if isinstance(stop, Stopped) else 130
