"""What a crash or a kill leaves behind, and how the next start deals with it: a save cut
between its two renames, half-written checkpoint folders, a run whose process is gone;
and what a run folder from someone else cannot do (run code through a pickle)."""

from __future__ import annotations

import os
import pickle
import signal
import stat
import subprocess
import sys
import time

import pytest
import torch

from conftest import import_texts, json_lines
from marinade.errors import MarinadeError
from marinade.home import open_home
from marinade.training.checkpoints import STATE_FILE, checkpoint_folder, restore_state
from marinade.training.loop import train
from marinade.training.recipe import build_recipe

TEXTS = [f"The lamplighter walked the quay at dusk, lamp number {i}, quietly." for i in range(30)]


@pytest.fixture
def home(tmp_path, store):
    home = open_home(tmp_path / "home")
    import_texts(store, tmp_path / "texts", "quay", TEXTS)
    return home


def recipe(tiny_model, name, steps=8):
    settings = {"batch_size": 2, "block_size": 32, "warmup": 2, "eval_every": 0, "save_every": 2}
    return build_recipe(name, str(tiny_model), [f"quay:{steps}"], None, None, settings)


def stop_at(step):
    def on_step(report):
        if report.step == step:
            raise KeyboardInterrupt

    return on_step


def test_resume_after_a_crash_between_the_renames_and_stale_partials(store, home, tiny_model):
    with pytest.raises(KeyboardInterrupt):
        train(store, home, recipe(tiny_model, "cut"), on_step=stop_at(5))
    last = checkpoint_folder(home, "cut", "last")
    # the crash came after `last` was moved aside and before the new one was renamed in,
    # and an earlier kill left a half-written partial folder of 50 MB
    os.replace(last, last.with_name(".old-last"))
    partial = last.with_name(".last-k1ll3d00")
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"\0" * (50 << 20))
    statuses = []
    resumed = train(store, home, recipe(tiny_model, "cut"), resume=True, on_status=statuses.append)
    assert any("resuming cut at step 5 of 8" in line for line in statuses), statuses
    assert (resumed.status, resumed.steps_done) == ("finished", 8)
    assert not partial.exists()
    names = sorted(p.name for p in last.parent.iterdir())
    assert names == ["last", "phase-1"]
    assert torch.load(last / STATE_FILE, weights_only=True)["step"] == 8
    # everything the run wrote is private to its owner
    loose = [
        p for p in [home.path, *home.path.rglob("*")] if stat.S_IMODE(p.stat().st_mode) & 0o077
    ]
    assert loose == []


def test_a_model_name_finds_the_retired_checkpoint(store, home, tiny_model):
    from marinade.models import model_folder

    with pytest.raises(KeyboardInterrupt):
        train(store, home, recipe(tiny_model, "between"), on_step=stop_at(3))
    last = checkpoint_folder(home, "between", "last")
    os.replace(last, last.with_name(".old-last"))
    folder, _ = model_folder("between", home)
    assert folder.name == ".old-last"


class RunsCode:
    """A pickled object whose loading runs a command: what a hostile checkpoint holds."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickled_training_state_is_refused_without_running_it(store, home, tiny_model, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train(store, home, recipe(tiny_model, "copied"), on_step=stop_at(3))
    state_file = checkpoint_folder(home, "copied", "last") / STATE_FILE
    saved = torch.load(state_file, weights_only=True)  # marinade's own: plain values only
    marker = tmp_path / "it-ran"
    saved["scheduler"] = RunsCode(marker)
    with state_file.open("wb") as handle:
        pickle.dump(saved, handle)  # a plain pickle, as torch.save(weights_only=False) reads
    with pytest.raises(MarinadeError, match="refused: it holds pickled objects") as raised:
        train(store, home, recipe(tiny_model, "copied"), resume=True)
    assert "\n" not in str(raised.value)
    assert not marker.exists()
    with pytest.raises(MarinadeError, match="refused"):
        restore_state(state_file.parent, None)  # type: ignore[arg-type]
    assert not marker.exists()


def _wait_for(predicate, process, seconds=120):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert process.poll() is None, process.stderr.read()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_killed_run_shows_interrupted_and_resumes(cli, store, home, tiny_model, home_dir):
    command = [sys.executable, "-m", "marinade", "--home", str(home_dir), "train", "killed"]
    command += ["--model", str(tiny_model), "--phase", "quay:100000", "--batch-size", "2"]
    command += ["--block-size", "32", "--eval-every", "0", "--save-every", "2"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        _wait_for(lambda: (run.steps_done if (run := store.run("killed")) else 0) >= 3, process)
        alive = json_lines(cli("runs", "show", "killed", "--json").stdout)[0]
        assert alive["status"] == "running"  # its process holds the lock
        again = cli("train", "killed", "--resume")
        assert again.exit_code == 1
        assert "being trained by another process" in again.stderr
        process.send_signal(signal.SIGKILL)  # no handler runs: nothing is recorded
        process.wait(timeout=60)
    finally:
        process.kill()
    assert store.run("killed").status == "running"  # what the store alone would say forever
    shown = json_lines(cli("runs", "show", "killed", "--json").stdout)[0]
    assert shown["status"] == "interrupted"
    assert "process is gone" in shown["message"]
    listed = {row["name"]: row for row in json_lines(cli("runs", "list", "--json").stdout)}
    assert listed["killed"]["status"] == "interrupted"
    assert store.run("killed").status == "interrupted"
