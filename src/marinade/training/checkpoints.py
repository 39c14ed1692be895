"""A run's checkpoints: where they live, what they hold, how they are written and read back.

The one place that knows the layout, for the training loop and for models.py (which loads
`RUN` and `RUN@PHASE` by name):

    HOME/runs/RUN/checkpoints/last/       the resumable one: rewritten every --save-every
                                          steps, at each phase's end and on Ctrl-C
    HOME/runs/RUN/checkpoints/phase-N/    the model as phase N left it

Each is a Hugging Face folder (the model, or the LoRA adapter, and the tokenizer) plus
`training-state.pt`: step, RNG states, recipe, and for `last` the optimizer and schedule;
and the run's document start (document_start.py), which sampling reads.
A checkpoint is written under a temporary name beside its place and renamed in
(`files.partial_folder`), so a crash or a full disk never leaves a half-written one.
The layout is light to import; saving and restoring import torch when called.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marinade.document_start import write_convention
from marinade.errors import MarinadeError
from marinade.files import partial_folder
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
    """The run's `last` checkpoint, or None when it stopped before saving one (it starts
    again from the beginning)."""
    folder = checkpoint_folder(home, run, LAST)
    return folder if (folder / STATE_FILE).exists() else None


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
                "scheduler": state.scheduler.state_dict() if resumable else None,
                "torch_rng": torch.get_rng_state(),
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

    saved = torch.load(folder / STATE_FILE, weights_only=False)
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    if saved["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    state.step = int(saved["step"])
