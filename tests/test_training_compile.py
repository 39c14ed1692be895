"""`train --compile`: the model's body compiled by torch.compile for the training steps, on a
tiny GPT-2. It trains to the losses of the same run without it, and the run keeps it."""

from __future__ import annotations

import pytest

from conftest import import_texts
from marinade.home import open_home
from marinade.training.loop import train
from marinade.training.recipe import Recipe, build_recipe

MINE = [f"I like tea and toast, and rain on the roof number {i}." for i in range(40)]
SETTINGS = {"batch_size": 2, "block_size": 32, "warmup": 2, "eval_every": 3, "dtype": "float32"}


def test_a_compiled_run_tracks_the_eager_run(tmp_path, store, tiny_model):
    home = open_home(tmp_path / "home")
    import_texts(store, tmp_path / "mine", "mine", MINE)

    def run(name: str, **flags):
        settings = {**SETTINGS, **flags}
        recipe = build_recipe(name, str(tiny_model), ["mine:6"], None, None, settings)
        return train(store, home, recipe, on_status=said.append)

    said: list[str] = []
    run("eager")
    assert not any("compiling" in line for line in said)
    compiled = run("compiled", compile=True)
    assert compiled.status == "finished"
    assert any("compiling the model" in line for line in said)
    assert Recipe.from_dict(store.run("compiled").recipe_dict()).settings.compile is True
    eager = {e.step: e.loss for e in store.evals("eager")}
    fast = {e.step: e.loss for e in store.evals("compiled")}
    assert eager.keys() == fast.keys() == {0, 3, 6}
    assert fast[6] < fast[0]  # it learns
    assert fast != eager  # compiled: other dropout draws and roundings
    for step, loss in eager.items():  # dropout draws differ, so close, not equal
        assert fast[step] == pytest.approx(loss, rel=0.03), step


def test_resume_with_compile_on_a_run_without_it_is_refused(cli, tmp_path, store, tiny_model):
    import_texts(store, tmp_path / "mine", "mine", MINE)
    args = ["--model", str(tiny_model), "--phase", "mine:2", "--block-size", "16"]
    assert cli("train", "half", *args, "--max-minutes", "0.0001").exit_code == 0
    result = cli("train", "half", "--resume", "--compile")
    assert result.exit_code == 1 and "--compile would change how run half trains" in result.stderr


def test_compile_without_a_cpp_compiler_is_one_line(cli, tmp_path, store, tiny_model, monkeypatch):
    import shutil

    import_texts(store, tmp_path / "mine", "mine", MINE)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    args = ["--model", str(tiny_model), "--phase", "mine:2", "--block-size", "16", "--compile"]
    result = cli("train", "nocc", *args)
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and "needs a C++ compiler" in result.stderr
    assert store.run("nocc") is None
