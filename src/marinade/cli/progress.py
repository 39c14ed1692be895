"""Progress for long work: a rich bar on a terminal, short lines every few seconds elsewhere.

rich draws nothing on a console that is not a terminal until the work is over, so
`train` under cron, in a pipe or in CI said nothing for minutes and then printed
every bar at once. Off a terminal, `ProgressLines` stands in for rich's
`Progress` (the few calls marinade makes of it) and writes one line per task
at its first update, every MARINADE_PROGRESS_SECONDS (default 5) while it runs,
and at its last; a task that never moved (the command failed first) prints none.
"""

from __future__ import annotations

import os
import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import Progress, ProgressColumn, TaskID

DEFAULT_SECONDS = 5.0


class ProgressLines:
    """The part of rich's Progress that marinade uses, written as lines of text."""

    def __init__(self, console: Console, every: float | None = None, disable: bool = False):
        self.console = console
        self.every = every if every is not None else _seconds_from_environment()
        self.disable = disable
        self._tasks: dict[int, dict[str, Any]] = {}
        self._started = time.monotonic()

    def __enter__(self) -> ProgressLines:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for task_id, task in self._tasks.items():
            if task["changed"]:  # its last state, unless already printed (or never begun)
                self._print(task_id)

    @property
    def task_ids(self) -> list[TaskID]:
        return [TaskID(task_id) for task_id in self._tasks]

    def add_task(
        self, description: str, total: float | None = None, completed: float = 0, **fields: Any
    ) -> TaskID:
        task_id = len(self._tasks)
        self._tasks[task_id] = {
            "description": description,
            "total": total,
            "completed": completed,
            "fields": fields,
            "started": time.monotonic(),
            "printed_at": None,
            "changed": False,
        }
        return TaskID(task_id)

    def update(
        self,
        task_id: TaskID,
        *,
        total: float | None = None,
        completed: float | None = None,
        advance: float | None = None,
        description: str | None = None,
        **fields: Any,
    ) -> None:
        task = self._tasks[task_id]
        if total is not None:
            task["total"] = total
        if completed is not None:
            task["completed"] = completed
        if advance is not None:
            task["completed"] += advance
        if description is not None:
            task["description"] = description
        task["fields"].update(fields)
        task["changed"] = True
        printed_at = task["printed_at"]
        if printed_at is None or time.monotonic() - printed_at >= self.every:
            self._print(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def line(self, task_id: int) -> str:
        """`description  done/total (pct)  field value ...  elapsed`."""
        task = self._tasks[task_id]
        done, total = task["completed"], task["total"]
        parts = [task["description"]]
        if total:
            parts.append(f"{done:g}/{total:g} ({100 * done / total:.0f}%)")
        else:
            parts.append(f"{done:g}")
        parts += [f"{name} {value}" for name, value in task["fields"].items() if value != "-"]
        elapsed = int(time.monotonic() - task["started"])
        parts.append(f"{elapsed // 60}:{elapsed % 60:02d} elapsed")
        return "  ".join(parts)

    def _print(self, task_id: int) -> None:
        task = self._tasks[task_id]
        task["printed_at"] = time.monotonic()
        task["changed"] = False
        if not self.disable:
            self.console.print(self.line(task_id), markup=False, highlight=False)


def live_progress(
    *columns: str | ProgressColumn,
    console: Console,
    transient: bool = False,
    disable: bool = False,
) -> Progress | ProgressLines:
    """A rich bar on a terminal, progress lines anywhere else."""
    if console.is_terminal:
        return Progress(*columns, console=console, transient=transient, disable=disable)
    return ProgressLines(console, disable=disable)


def _seconds_from_environment() -> float:
    value = os.environ.get("MARINADE_PROGRESS_SECONDS", "")
    try:
        return max(0.0, float(value)) if value else DEFAULT_SECONDS
    except ValueError:
        return DEFAULT_SECONDS
