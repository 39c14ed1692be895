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


def test_a_compile_that_fails_at_the_first_step_is_one_line(
    cli, tmp_path, store, tiny_model, monkeypatch
):
    """As CI's full disk did: the compiler's own error line, the run marked failed."""
    import torch._dynamo
    import torch._inductor.config

    broken = tmp_path / "g++"
    broken.write_text(
        "#!/bin/sh\n"  # a real g++ to ask its version; every build fails as on a full disk
        'case " $* " in *" -o "*) echo "fatal error: cannot write PCH file: '
        'No space left on device" >&2; exit 1;; esac\nexec g++ "$@"\n'
    )
    broken.chmod(0o755)
    monkeypatch.setenv("CXX", str(broken))
    monkeypatch.setattr(torch._inductor.config.cpp, "cxx", (None, str(broken)))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # nothing cached
    torch._dynamo.reset()
    import_texts(store, tmp_path / "mine", "mine", MINE)
    args = ["--model", str(tiny_model), "--phase", "mine:2", "--block-size", "16", "--compile"]
    result = cli("train", "full-disk", *args)
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]  # after the run's own progress lines
    assert line.startswith("Error: --compile") and "Traceback" not in result.stderr
    assert "torch.compile failed" in line and "No space left on device" in line
    assert "train without --compile" in line
    assert store.run("full-disk").status == "failed"
