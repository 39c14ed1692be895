"""A run's checkpoints: where they live, what they hold, how they are written and read back.

The one place that knows the layout, for the training loop and for models.py (which loads
`RUN` and `RUN@PHASE` by name):

    HOME/runs/RUN/checkpoints/last/       the resumable one: rewritten every --save-every
                                          steps, at each phase's end and on Ctrl-C
    HOME/runs/RUN/checkpoints/phase-N/    the model as phase N left it

Each is a Hugging Face folder (the model, or the LoRA adapter, and the tokenizer) plus
`training-state.pt`: step, RNG states, recipe, and for `last` the optimizer and schedule;
and the run's document start (document_start.py), which sampling reads. The state holds
only tensors and plain values (numbers, strings, lists, dicts), and is read back with
torch's `weights_only` loader: a run folder copied from someone else cannot run code
on `--resume`, where a full pickle would have run whatever it was given.
A checkpoint is written under a temporary name beside its place and renamed in
(`files.partial_folder`), so a crash or a full disk never leaves a half-written one.
A kill at the wrong moment leaves traces instead: a half-filled `.last-xxxxxxxx`
(1.6 GB for full fine-tuning of a large model), or only `.old-last` when it came between
the two renames. A resume and every model load find `.old-last` where `last` is missing,
and a new start of the run (holding its training lock) puts it back and removes the rest.
The layout is light to import; saving and restoring import torch when called.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marinade.document_start import write_convention
from marinade.errors import MarinadeError
from marinade.files import in_place_or_retired, partial_folder, tidy_partials
from marinade.home import Home
from marinade.training.recipe import Recipe

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

LAST = "last"  # the only resumable checkpoint
STATE_FILE = "training-state.pt"


def run_folder(home: Home, run: str) -> Path:
    return home.runs / run


def checkpoints_folder(home: Home, run: str) -> Path:
    return run_folder(home, run) / "checkpoints"


def checkpoint_folder(home: Home, run: str, checkpoint: str) -> Path:
    return checkpoints_folder(home, run) / checkpoint


def phase_checkpoint(phase: int | str) -> str:
    """The checkpoint a phase ends with (phases count from 1)."""
    return f"phase-{phase}"


def resumable_checkpoint(home: Home, run: str) -> Path | None:
    """The run's `last` checkpoint (its retired copy when a crash came between the two
    renames of a save), or None when it stopped before saving one (it starts again from
    the beginning)."""
    folder = in_place_or_retired(checkpoint_folder(home, run, LAST))
    return folder if (folder / STATE_FILE).exists() else None


def tidy_checkpoints(home: Home, run: str) -> list[str]:
    """What a killed save left in the run's checkpoints: `.old-NAME` back in place where
    NAME is missing, partial folders removed. Only for the process holding the run's
    training lock (no one else writes there then)."""
    return tidy_partials(checkpoints_folder(home, run))


@dataclass
class TrainingState:
    """A run in progress, as a checkpoint keeps it and a resume puts it back."""

    recipe: Recipe
    model: Any  # the model itself (a PeftModel with LoRA), not a DistributedDataParallel wrapper
    tokenizer: PreTrainedTokenizerBase
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    step: int = 0  # optimizer steps done


def save_checkpoint(home: Home, name: str, state: TrainingState) -> Path:
    """Write checkpoint `name` of the run beside its final place and rename it in.

    Only `last` carries the optimizer and schedule: for full fine-tuning that is twice
    the model's size again, and a phase's checkpoint is only ever a starting point for a
    new run (--from RUN@PHASE) or a model to sample.
    """
    import torch

    resumable = name == LAST
    target = checkpoint_folder(home, state.recipe.name, name)
    try:
        with partial_folder(target) as partial:
            state.model.save_pretrained(partial)
            state.tokenizer.save_pretrained(partial)
            write_convention(partial, state.recipe.settings.document_start)
            saved = {
                "step": state.step,
                "optimizer": state.optimizer.state_dict() if resumable else None,
                "scheduler": plain_scheduler_state(state.scheduler) if resumable else None,
                "torch_rng": torch.get_rng_state(),  # a uint8 tensor
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "recipe": state.recipe.to_dict(),
            }
            torch.save(saved, partial / STATE_FILE)
    except OSError as error:
        raise MarinadeError(f"cannot save checkpoint {target}: {error.strerror or error}") from None
    return target


def restore_state(folder: Path, state: TrainingState) -> None:
    """Put back what a resumable checkpoint kept: optimizer, schedule, RNG states, step.

    The weights are not here: the model was already loaded from the same folder."""
    import torch

    saved = load_state_file(folder / STATE_FILE)
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    if saved["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    state.step = int(saved["step"])


def plain_scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler) -> dict[str, Any]:
    """The schedule's state without its functions (LambdaLR keeps None for a lambda; the
    lambda itself is rebuilt from the recipe), so weights_only can read it back."""
    return {
        key: value
        for key, value in scheduler.state_dict().items()
        if value is None or isinstance(value, bool | int | float | str | list | tuple | dict)
    }


def load_state_file(path: Path) -> dict[str, Any]:
    """A training-state.pt read with torch's weights_only loader: tensors and plain values
    only. Anything else (a pickled object, which could run code) is a one-line error."""
    import pickle

    import torch

    try:
        saved = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        raise MarinadeError(
            f"{path}: refused: it holds pickled objects that could run code when loaded "
            "(marinade's checkpoints hold only tensors and plain values); do not resume "
            "a run folder you do not trust"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise MarinadeError(f"{path}: cannot read the training state: {first_line}") from None
    if not isinstance(saved, dict) or "step" not in saved:
        raise MarinadeError(f"{path}: not a marinade training state")
    return saved
