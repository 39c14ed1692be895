"""A training run's bookkeeping: its records in the store, and what `runs` shows, exports, removes.

A run is a row of the store's `runs` table (status, steps done, the recipe as JSON), its
held-out losses (`evals`), a record per checkpoint, and a folder of checkpoints
(training/checkpoints.py). These functions return values and raise one-line
MarinadeErrors; `marinade runs ...` only prints what they give. Light to import: loading
a model to export it imports torch then.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from marinade.document_start import LEGACY
from marinade.errors import MarinadeError
from marinade.home import Home
from marinade.store import Run, RunStatus, Store
from marinade.timestamps import now_iso
from marinade.training.checkpoints import run_folder
from marinade.training.recipe import Recipe, phase_of
from marinade.training.run_lock import is_training

GONE = "its training process is gone (killed?); --resume continues from the last checkpoint"


def run_record(store: Store, name: str, home: Home | None = None) -> Run:
    """The run's row in the store (settled, when the home is given), or an error
    pointing at `marinade runs list`."""
    record = store.run(name)
    if record is None:
        raise MarinadeError(f"no run named {name}; see `marinade runs list`")
    return settled(store, home, record) if home is not None else record


def settled(store: Store, home: Home, run: Run) -> Run:
    """A run the store says is running whose process no longer holds its training lock
    (killed, out of memory, a power cut) is interrupted: recorded so, and returned so."""
    if run.status != RunStatus.RUNNING or is_training(home, run.name):
        return run
    interrupted = replace(run, status=RunStatus.INTERRUPTED, message=GONE, updated_at=now_iso())
    store.save_run(interrupted)
    return interrupted


def all_runs(store: Store, home: Home) -> list[Run]:
    """Every run, oldest first, each settled."""
    return [settled(store, home, run) for run in store.runs()]


def resumable_recipe(store: Store, name: str) -> Recipe:
    """The recipe stored with run `name`, which must exist and not be finished."""
    existing = store.run(name)
    if existing is None:
        raise MarinadeError(f"no run named {name} to resume; see `marinade runs list`")
    if existing.status == RunStatus.FINISHED:
        raise MarinadeError(f"run {name} is finished; nothing to resume")
    return Recipe.from_dict(existing.recipe_dict())


# Settings that only watch a run: given with --resume they apply to the resumed part.
WATCH_ONLY = ("max_minutes", "eval_every", "save_every")


def resume_overrides(stored: Recipe, given: dict[str, Any]) -> dict[str, Any]:
    """Of the flags given with --resume ({setting: value}; `model`, `phases`, `start_from`
    and `recipe_file` beside the TrainSettings fields), the watching ones to apply.
    --max-minutes limits only the process it is given to: without it, none.

    A flag that would change how the run trains is refused in one line naming it,
    unless it repeats what the run already trains with."""
    current = {**asdict(stored.settings), "model": stored.model, "start_from": stored.start_from}
    watching: dict[str, Any] = {"max_minutes": None}  # a limit is this process's, not the run's
    for key, value in given.items():
        if key in WATCH_ONLY:
            watching[key] = value
            continue
        if key in current and _same(current[key], value):
            continue
        flag = "--" + RESUME_FLAG_NAMES.get(key, key).replace("_", "-")
        trained_with = f" (it trains with {current[key]!r})" if key in current else ""
        raise MarinadeError(
            f"{flag} would change how run {stored.name} trains{trained_with}; resume without "
            f"it, or train a new run. With --resume only {', '.join(_watch_flags())} apply"
        )
    return watching


RESUME_FLAG_NAMES = {
    "lora_targets": "lora_target",
    "sample_prompts": "sample_prompt",
    "phases": "phase",
    "start_from": "from",
    "recipe_file": "recipe",
}


def _same(stored: Any, value: Any) -> bool:
    if isinstance(stored, tuple | list) or isinstance(value, tuple | list):
        return list(stored or ()) == list(value or ())
    return bool(stored == value)


def _watch_flags() -> list[str]:
    return ["--" + key.replace("_", "-") for key in WATCH_ONLY]


def record_checkpoint(store: Store, recipe: Recipe, name: str, step: int, folder: Path) -> None:
    """Note in the store that checkpoint `name` of the run now holds step `step`."""
    store.save_checkpoint_record(
        {
            "run": recipe.name,
            "name": name,
            "step": step,
            "phase": phase_of(recipe, max(0, step - 1)),
            "path": str(folder),
            "saved_at": now_iso(),
        }
    )


@dataclass(frozen=True)
class PhaseProgress:
    """How far a run is through one of its phases."""

    label: str
    corpus: str  # as `runs show` writes it: a, a+b (merged) or a=0.3,b=0.7 (mixed)
    steps: int
    steps_done: int
    auto: bool = False  # the steps were picked from the corpus's size (automatic_steps)


def phase_progress(run: Run) -> list[PhaseProgress]:
    """Each phase of the run's recipe with the steps it has done."""
    phases, start = [], 0
    for phase in run.recipe_dict()["phases"]:
        corpora = phase["corpora"]
        if phase["merge"]:
            corpus = "+".join(c for c, _ in corpora)
        else:
            corpus = ",".join(c if len(corpora) == 1 else f"{c}={w}" for c, w in corpora)
        done = min(phase["steps"], max(0, run.steps_done - start))
        auto = bool(phase.get("auto"))
        phases.append(PhaseProgress(phase["label"], corpus, phase["steps"], done, auto))
        start += phase["steps"]
    return phases


def run_summary(store: Store, name: str, home: Home | None = None) -> dict[str, Any]:
    """What `runs show --json` prints: the record, phases with steps done, evals, checkpoints."""
    run = run_record(store, name, home)
    return {
        "name": run.name,
        "status": run.status,
        "model": run.model,
        "steps_done": run.steps_done,
        "total_steps": run.total_steps,
        "message": run.message,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "corpus_versions": json.loads(run.corpus_versions or "{}"),
        # per corpus: documents, segments and tokens trained on and held out (null: not recorded)
        "corpora": json.loads(run.corpus_split or "null"),
        "deterministic": run.deterministic,
        "dtype": run.dtype or "float32",  # what it computed in; runs from before m016: float32
        "settings": {
            "held_out_split": "documents",
            "document_start": LEGACY,
            "dtype": "float32",
            **run.recipe_dict()["settings"],
        },
        "phases": _with_ratings(run, [asdict(phase) for phase in phase_progress(run)], home),
        "evals": [asdict(e) for e in store.evals(name)],
        # ratings phases: held-out preference accuracy and KL from the reference
        "rating_evals": [asdict(e) for e in store.rating_evals(name)],
        "checkpoints": [asdict(c) for c in store.checkpoints(name)],
    }


def _with_ratings(
    run: Run, phases: list[dict[str, Any]], home: Home | None
) -> list[dict[str, Any]]:
    """Each phase with, for a ratings phase whose examples are frozen, their counts."""
    numbers = Recipe.from_dict(run.recipe_dict()).ratings_phases()
    for number, phase in enumerate(phases, 1):
        phase["ratings"] = None
        if home is not None and number in numbers:
            from marinade.training.ratings import load_data  # torch: only for such a run

            data = load_data(run_folder(home, run.name), number)
            phase["ratings"] = data.counts() if data else None
    return phases


def export_run(store: Store, home: Home, name: str, folder: Path) -> None:
    """Write RUN or RUN@PHASE as a standalone Hugging Face folder (LoRA merged in)."""
    from marinade.models import load_model, transformers_progress  # torch, transformers

    run_record(store, name.split("@")[0])
    if folder.exists() and any(folder.iterdir()):
        raise MarinadeError(f"{folder} exists and is not empty")
    loaded = load_model(name, home, device="cpu", dtype="float32")  # export as trained
    with transformers_progress(False):
        loaded.model.save_pretrained(folder)
        loaded.tokenizer.save_pretrained(folder)


def remove_run(store: Store, home: Home, name: str) -> None:
    """Delete a run: its record, evaluations, checkpoint records and checkpoint folders."""
    run_record(store, name)
    if is_training(home, name):
        raise MarinadeError(f"run {name} is being trained right now; stop it first")
    store.delete_run(name)
    shutil.rmtree(run_folder(home, name), ignore_errors=True)


def export_run_gguf(
    store: Store,
    home: Home,
    name: str,
    folder: Path,
    tensor_type: str = "q8_0",
    on_status: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write RUN or RUN@PHASE as FOLDER/NAME.gguf (LoRA merged in), with an Ollama
    Modelfile and a README beside it; returns the paths written. Refuses, before loading
    any weights, an unknown type, a folder it cannot write and files already there."""
    from marinade import gguf_export
    from marinade.curation.report import best_temperature
    from marinade.document_start import end_token_ids, sample_start_ids
    from marinade.models import load_model
    from marinade.sample_settings import DEFAULT_TEMPERATURE

    gguf_export.check_tensor_type(tensor_type)
    run_record(store, name.split("@")[0])
    stem = name.replace("@", "-")
    paths = [folder / f"{stem}.gguf", folder / "Modelfile", folder / "README.md"]
    _check_writable(folder, paths)
    loaded = load_model(name, home, device="cpu", dtype="float32")  # export as trained
    gguf_export.check_architecture(loaded.model.config.model_type)
    temperature = best_temperature(store.temperature_ratings(name))
    why = "the accept rate you rated highest in its experiments"
    if temperature is None:
        temperature, why = DEFAULT_TEMPERATURE, "marinade's default (no rated experiment yet)"
    tokenizer = loaded.tokenizer
    stops = [str(tokenizer.convert_ids_to_tokens(i)) for i in sorted(end_token_ids(tokenizer))]
    start = str(tokenizer.decode(sample_start_ids(tokenizer, loaded.document_start)))
    if on_status:
        on_status(f"writing {paths[0]} ({tensor_type})")
    gguf_export.write_gguf(loaded.model, tokenizer, loaded.folder, paths[0], name, tensor_type)
    paths[1].write_text(gguf_export.modelfile_text(paths[0].name, stops, temperature))
    paths[2].write_text(
        gguf_export.readme_text(name, paths[0].name, tensor_type, temperature, why, start)
    )
    return paths


def _check_writable(folder: Path, paths: list[Path]) -> None:
    """One line for a folder that is a file or cannot be written, or files already there."""
    if folder.exists() and not folder.is_dir():
        raise MarinadeError(f"{folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MarinadeError(f"cannot create {folder}: {error.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MarinadeError(f"cannot write in {folder}: permission denied")
    there = [path.name for path in paths if path.exists()]
    if there:
        raise MarinadeError(
            f"{folder} already has {', '.join(there)}; remove them or choose another folder"
        )
