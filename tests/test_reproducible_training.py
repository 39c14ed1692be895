"""On the real embedded SmolLM2 (slow): the same seed gives the same run, for LoRA and
full fine-tuning, and a run stopped by a real SIGINT or SIGTERM and resumed ends where
the uninterrupted run ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from marinade.home import open_home
from marinade.store import Store
from marinade.training.loop import train
from marinade.training.recipe import build_recipe
from marinade.training.runs import resumable_recipe

pytestmark = pytest.mark.slow

POSTS = [
    f"Rain again on the tin roof, {i} o'clock, and the kettle is the loudest thing here."
    for i in range(24)
] + [f"The harbour lamps come on one by one; number {i} always flickers first." for i in range(24)]
SETTINGS = {"batch_size": 2, "block_size": 32, "warmup": 2, "eval_every": 3, "save_every": 0}


@pytest.fixture
def real_home(tmp_path, smollm2_home, cli):
    """A home of its own with the converted SmolLM2 linked in, and a corpus of posts."""
    home = open_home(tmp_path / "home")
    home.models.mkdir(parents=True, exist_ok=True)
    (home.models / "smollm2").symlink_to(smollm2_home / "models" / "smollm2")
    folder = tmp_path / "posts"
    folder.mkdir()
    for i, text in enumerate(POSTS):
        (folder / f"{i}.txt").write_text(text)
    assert cli("corpus", "import", str(folder), "--name", "posts").exit_code == 0
    return home


def final_losses(store: Store, name: str) -> list[tuple[int, str, float]]:
    return [(e.step, e.corpus, e.loss) for e in store.evals(name)]


@pytest.mark.parametrize("method", ["lora", "full"])
def test_two_runs_with_one_seed_are_the_same(real_home, store, method):
    runs = []
    for name in ("first", "second"):
        recipe = build_recipe(
            f"{name}-{method}", "smollm2", ["posts:4"], None, None, {**SETTINGS, "method": method}
        )
        train(store, real_home, recipe)
        runs.append(final_losses(store, recipe.name))
        assert store.run(recipe.name).deterministic is True  # a CPU: measured so
    assert runs[0] == runs[1]  # exactly: not a float apart
    assert [step for step, _, _ in runs[0]] == [0, 3, 4]


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_run_stopped_by_a_signal_resumes_to_the_uninterrupted_losses(
    real_home, store, home_dir, name
):
    flags = ["--phase", "posts:8", "--method", "lora", "--batch-size", "2", "--block-size", "32"]
    flags += ["--warmup", "2", "--eval-every", "3", "--save-every", "1"]
    flags += ["--dtype", "float32"]  # as the straight run below (tests see a float32 CPU)
    command = [sys.executable, "-m", "marinade", "--home", str(home_dir), "train", "stopped"]
    process = subprocess.Popen(
        [*command, *flags],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 300
        while (run.steps_done if (run := store.run("stopped")) else 0) < 3:
            assert process.poll() is None and time.monotonic() < deadline, "it ended first"
            time.sleep(0.05)
        process.send_signal(getattr(signal, name))
        _, stderr = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 128 + getattr(signal, name), stderr[-2000:]
    stopped = store.run("stopped")
    assert stopped.status == "interrupted" and stopped.steps_done < 8
    train(store, real_home, resumable_recipe(store, "stopped"), resume=True)
    straight = build_recipe(
        "straight",
        "smollm2",
        ["posts:8"],
        None,
        None,
        {**SETTINGS, "method": "lora", "save_every": 1},
    )
    train(store, real_home, straight)
    want = {(step, corpus): loss for step, corpus, loss in final_losses(store, "straight")}
    got = {(step, corpus): loss for step, corpus, loss in final_losses(store, "stopped")}
    assert got == pytest.approx(want, abs=1e-6)
