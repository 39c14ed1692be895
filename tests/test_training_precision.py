"""Training in bfloat16 autocast over float32 weights, on a tiny GPT-2: the losses track a
float32 run's, the run records its dtype, a resumed run keeps it, and the bad-input lines."""

from __future__ import annotations

import pytest
import torch

import marinade.precision
from conftest import import_texts
from marinade.errors import MarinadeError
from marinade.home import open_home
from marinade.models import load_causal_lm
from marinade.training.loop import train
from marinade.training.loss import fused_loss, standard_loss
from marinade.training.recipe import Recipe, build_recipe
from marinade.training.runs import resumable_recipe

MINE = [f"I like tea and toast, and rain on the roof number {i}." for i in range(40)]
SETTINGS = {"batch_size": 2, "block_size": 32, "warmup": 2, "eval_every": 3, "save_every": 2}


@pytest.fixture
def bf16_cpu(monkeypatch):
    """A CPU that computes bf16 natively, whatever this machine has (only the probe changes)."""
    monkeypatch.setattr(marinade.precision, "cpu_bf16_probe", lambda: "AVX512_BF16")


@pytest.fixture
def home(tmp_path, store):
    home = open_home(tmp_path / "home")
    import_texts(store, tmp_path / "mine", "mine", MINE)
    return home


def recipe(tiny_model, name: str, **flags) -> Recipe:
    return build_recipe(name, str(tiny_model), ["mine:10"], None, None, {**SETTINGS, **flags})


def losses(store, name: str) -> dict[int, float]:
    return {e.step: e.loss for e in store.evals(name)}


@pytest.mark.parametrize("method", ["full", "lora"])
def test_a_bf16_run_tracks_the_float32_run(store, home, tiny_model, bf16_cpu, method):
    wide = train(store, home, recipe(tiny_model, "wide", method=method, dtype="float32"))
    auto = train(store, home, recipe(tiny_model, "auto", method=method))  # auto: bf16 here
    assert (wide.dtype, auto.dtype) == ("float32", "bfloat16")
    stored = Recipe.from_dict(store.run("auto").recipe_dict())
    assert stored.settings.dtype == "bfloat16"  # settled when it started, not "auto"
    wide_losses, auto_losses = losses(store, "wide"), losses(store, "auto")
    assert wide_losses.keys() == auto_losses.keys() == {0, 3, 6, 9, 10}
    assert wide_losses[0] == auto_losses[0]  # the base model, measured in float32 by both
    assert auto_losses[10] < auto_losses[0]  # it learns
    assert auto_losses != wide_losses  # it did compute in bf16
    for step, loss in wide_losses.items():
        assert auto_losses[step] == pytest.approx(loss, rel=0.02), step


def test_a_bf16_run_resumes_in_bf16_to_the_uninterrupted_losses(
    store, home, tiny_model, bf16_cpu, monkeypatch
):
    train(store, home, recipe(tiny_model, "straight", dtype="bfloat16"))

    def stop_at_five(report):
        if report.step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(store, home, recipe(tiny_model, "stopped", dtype="bfloat16"), on_step=stop_at_five)
    assert store.run("stopped").dtype == "bfloat16"
    # resumed where bf16 is emulated: it keeps the dtype it trained in, and says so
    monkeypatch.setattr(marinade.precision, "cpu_bf16_probe", lambda: None)
    said: list[str] = []
    resumed = train(
        store, home, resumable_recipe(store, "stopped"), resume=True, on_status=said.append
    )
    assert (resumed.status, resumed.dtype) == ("finished", "bfloat16")
    assert any("resumes in it" in line for line in said)
    assert losses(store, "stopped") == pytest.approx(losses(store, "straight"), abs=1e-6)


def test_train_dtype_bad_input_is_one_line_and_stores_nothing(cli, home, tiny_model, store):
    args = ["--model", str(tiny_model), "--phase", "mine:2", "--block-size", "16"]
    result = cli("train", "nope", *args, "--dtype", "bfloat16")  # tests see a float32 CPU
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and "no native bf16" in result.stderr
    result = cli("train", "nope", *args, "--dtype", "float16")
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and "float16" in result.stderr
    assert store.run("nope") is None


def test_resume_with_another_dtype_is_refused(cli, home, tiny_model, store, bf16_cpu):
    args = ["--model", str(tiny_model), "--phase", "mine:2", "--block-size", "16"]
    assert cli("train", "half", *args, "--max-minutes", "0.0001").exit_code == 0
    assert store.run("half").dtype == "bfloat16"
    assert "in bfloat16" in cli("runs", "show", "half").stdout
    result = cli("train", "half", "--resume", "--dtype", "float32")
    assert result.exit_code == 1 and "--dtype would change how run half trains" in result.stderr


def test_a_recipe_stored_before_bf16_training_trained_in_float32(tiny_model):
    stored = recipe(tiny_model, "old").to_dict()
    del stored["settings"]["dtype"]
    assert Recipe.from_dict(stored).settings.dtype == "float32"


def test_the_fused_loss_under_bf16_autocast_matches_the_models_own(tiny_model):
    """Its three matmuls compute in bf16 too (autocast leaves out= and in-place ones alone),
    and its loss and gradients stay those of the model's own loss under the same autocast."""
    model = load_causal_lm(tiny_model)
    model.eval()  # no dropout: the two passes see the same network
    batch = torch.randint(0, model.config.vocab_size, (2, 24), generator=torch.Generator())
    results = []
    for loss_of in (standard_loss, fused_loss):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = loss_of(model, batch)
        loss.backward()
        head = model.get_output_embeddings().weight.grad.clone()
        first = model.transformer.h[0].mlp.c_fc.weight.grad.clone()
        results.append((float(loss), head, first))
    (loss_a, head_a, first_a), (loss_b, head_b, first_b) = results
    assert loss_b == pytest.approx(loss_a, rel=2e-3)
    assert head_a.dtype == head_b.dtype == torch.float32  # the master weights' gradients
    for a, b in ((head_a, head_b), (first_a, first_b)):
        assert float((a - b).norm() / a.norm()) < 0.03
    with pytest.raises(MarinadeError, match="dtype must be auto, float32 or bfloat16"):
        recipe(tiny_model, "bad", dtype="float64")
