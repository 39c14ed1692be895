"""Off a terminal, long work prints a short progress line every few seconds."""

from __future__ import annotations

import io

from rich.console import Console

from marinade.cli.progress import ProgressLines, live_progress


def console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=False, width=200), buffer


def test_a_pipe_gets_lines_at_start_every_interval_and_at_the_end():
    con, buffer = console()
    with live_progress(console=con) as progress:
        assert isinstance(progress, ProgressLines)
        progress.every = 3600.0  # nothing between the first line and the last
        task = progress.add_task("run phase 1/2", total=10, loss="-")
        for step in range(1, 11):
            progress.update(task, completed=step, loss=f"{3 - step / 10:.3f}")
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("run phase 1/2  1/10 (10%)  loss 2.900")
    assert lines[1].startswith("run phase 1/2  10/10 (100%)  loss 2.000")
    assert lines[1].endswith("elapsed")


def test_every_update_prints_when_the_interval_is_zero(monkeypatch):
    monkeypatch.setenv("MARINADE_PROGRESS_SECONDS", "0")
    con, buffer = console()
    with live_progress(console=con) as progress:
        task = progress.add_task("cells", total=4)
        for _ in range(4):
            progress.advance(task, 1)
    assert [line.split("  ")[1] for line in buffer.getvalue().splitlines()] == [
        "1/4 (25%)",
        "2/4 (50%)",
        "3/4 (75%)",
        "4/4 (100%)",
    ]


def test_a_terminal_gets_richs_bar():
    con = Console(file=io.StringIO(), force_terminal=True)
    assert not isinstance(live_progress(console=con), ProgressLines)


def test_a_task_that_never_moved_prints_nothing():
    con, buffer = console()
    with live_progress(console=con) as progress:
        progress.add_task("run phase 1/1", total=3, loss="-")
    assert buffer.getvalue() == ""
