"""SIGTERM and SIGHUP stop training as Ctrl-C does: a resumable checkpoint, the run
marked interrupted, the resumed run ending where an uninterrupted one ends; a job whose
SIGINT is ignored still stops on SIGTERM; the scheduler finishes its pass and exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import TRAINING_TEXT

ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1"}
FLAGS = ["--batch-size", "2", "--block-size", "32", "--warmup", "2", "--save-every", "0"]


@pytest.fixture
def corpus_home(cli, tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    for i, text in enumerate(TRAINING_TEXT * 3):
        (folder / f"{i}.txt").write_text(f"{text} ({i})")
    assert cli("corpus", "import", str(folder), "--name", "texts").exit_code == 0


def start_training(home_dir, tiny_model, name: str, steps: int, **popen) -> subprocess.Popen:
    command = [sys.executable, "-m", "marinade", "--home", str(home_dir), "train", name]
    command += ["--model", str(tiny_model), "--phase", f"texts:{steps}", *FLAGS]
    command += ["--eval-every", str(steps // 2)]
    popen.setdefault("preexec_fn", lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=ENVIRONMENT, **popen)


def wait_for_steps(store, name: str, process: subprocess.Popen, steps: int) -> None:
    deadline = time.monotonic() + 120
    while (run.steps_done if (run := store.run(name)) else 0) < steps:
        assert process.poll() is None and time.monotonic() < deadline, "it ended first"
        time.sleep(0.02)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_stop_signal_saves_like_ctrl_c_and_the_run_resumes_exactly(
    cli, store, corpus_home, home_dir, tiny_model, name
):
    number = getattr(signal, name)
    process = start_training(home_dir, tiny_model, "stopped", 400)
    try:
        wait_for_steps(store, "stopped", process, 3)
        process.send_signal(number)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + number, stderr[-2000:]
    said = " ".join(stderr.split())
    assert f"stopped by {name} at step" in said and "checkpoint saved" in said
    run = store.run("stopped")
    assert run.status == "interrupted" and run.message == name
    assert 3 <= run.steps_done < 400
    [last] = [c for c in store.checkpoints("stopped") if c.name == "last"]
    assert last.step == run.steps_done

    # resumed in a process like the others (one thread), so the sums add up alike
    resume = [sys.executable, "-m", "marinade", "--home", str(home_dir), "train", "stopped"]
    resumed = subprocess.run([*resume, "--resume"], capture_output=True, text=True, env=ENVIRONMENT)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = [sys.executable, "-m", "marinade", "--home", str(home_dir), "train", "straight"]
    straight += ["--model", str(tiny_model), "--phase", "texts:400", *FLAGS, "--eval-every", "200"]
    finished = subprocess.run(straight, capture_output=True, text=True, env=ENVIRONMENT)
    assert finished.returncode == 0, finished.stderr[-2000:]
    final = {e.corpus: e.loss for e in store.evals("straight") if e.step == 400}
    again = {e.corpus: e.loss for e in store.evals("stopped") if e.step == 400}
    assert again == pytest.approx(final, abs=1e-6)


def test_a_background_job_with_sigint_ignored_stops_on_sigterm(
    store, corpus_home, home_dir, tiny_model
):
    def ignore_sigint() -> None:  # what a shell does to a job started with `&` in a script
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    process = start_training(home_dir, tiny_model, "background", 100000, preexec_fn=ignore_sigint)
    try:
        wait_for_steps(store, "background", process, 2)
        process.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert process.poll() is None  # ignored, as the shell asked
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert store.run("background").status == "interrupted"


def test_the_scheduler_finishes_its_pass_and_exits_on_sigterm(home_dir):
    command = [sys.executable, "-m", "marinade", "--home", str(home_dir), "scheduler"]
    process = subprocess.Popen(
        [*command, "--every", "3600"], stderr=subprocess.PIPE, text=True, env=ENVIRONMENT
    )
    try:
        started = process.stderr.readline()  # type: ignore[union-attr]
        assert "scheduler: posting what is due" in started
        time.sleep(2.0)  # its first pass (nothing is due), then it waits an hour for the next
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert time.monotonic() - signalled < 10  # not the hour
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "scheduler stopped (SIGTERM)" in " ".join(stderr.split())


def test_samples_between_steps_do_not_change_the_training(store, corpus_home, tiny_model):
    """Sampling during training draws random numbers between steps; each micro-batch
    seeds its own dropout, so the run trains as it would have without them."""
    from marinade.home import open_home
    from marinade.training.loop import train
    from marinade.training.recipe import build_recipe

    home = open_home(store.path.parent)
    losses = []
    for name, sample_every in (("quiet", 0), ("sampling", 2)):
        settings = {"batch_size": 2, "block_size": 32, "warmup": 2, "eval_every": 3}
        settings |= {"save_every": 0, "sample_every": sample_every}
        train(store, home, build_recipe(name, str(tiny_model), ["texts:6"], None, None, settings))
        losses.append([(e.step, e.loss) for e in store.evals(name)])
    assert store.count_samples() > 0  # the second run did sample
    assert losses[0] == losses[1]


def test_experiment_run_stops_on_sigterm_and_marks_its_run(
    store, corpus_home, home_dir, tiny_model, tmp_path
):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f"""
name = "long"
model = "{tiny_model}"
temperatures = [1.0]
samples_per_cell = 1
max_new_tokens = 4
[training]
batch_size = 2
block_size = 32
eval_every = 0
save_every = 0
[[recipes]]
name = "endless"
phases = ["texts:100000"]
"""
    )
    command = [sys.executable, "-m", "marinade", "--home", str(home_dir), "experiment", "run"]
    process = subprocess.Popen(
        [*command, str(grid)], stderr=subprocess.PIPE, text=True, env=ENVIRONMENT
    )
    try:
        wait_for_steps(store, "long-endless", process, 2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "stopped by SIGTERM; continue with: marinade experiment run" in " ".join(stderr.split())
    assert store.run("long-endless").status == "interrupted"
    assert store.run("long-endless").message == "SIGTERM"
    assert store.experiment("long")["status"] == "interrupted"


def test_a_stop_whose_exception_was_swallowed_stops_at_the_next_check():
    """Python prints "Exception ignored" for an exception raised in a __del__ and goes on;
    the work's check between steps raises Stopped then."""
    from marinade.cli.signals import interrupt_on_stop_signals
    from marinade.errors import Stopped

    class SignalsWhenCollected:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)  # the handler runs here, inside __del__, and its exception is lost

    with interrupt_on_stop_signals() as check:
        SignalsWhenCollected()  # collected at once: the signal arrives and is swallowed
        with pytest.raises(Stopped):
            check()
    with interrupt_on_stop_signals() as check:
        check()  # no signal: nothing raised
