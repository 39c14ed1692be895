"""One training process, or several started by `accelerate launch` (or torchrun).

With several, Accelerate wraps the model in DistributedDataParallel: each process
draws its own micro-batches (so the global batch is --batch-size x processes),
the gradients are averaged across processes, and only the main process writes
the store, checkpoints and samples while the others wait for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch


def launched_processes() -> int:
    """How many processes the launcher started (1 when run directly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True in the process that speaks and writes: the only one, or rank 0 of several.

    Read from the launcher's environment, so it can be asked before training starts
    (the CLI shows progress only here)."""
    return os.environ.get("RANK", "0") == "0"


@dataclass
class Workers:
    accelerator: Any = None  # accelerate.Accelerator, only with several processes

    @classmethod
    def from_environment(cls) -> Workers:
        if launched_processes() <= 1:
            return cls()
        from accelerate import Accelerator

        # the CPU needs saying: Accelerate would otherwise only look for accelerators
        return cls(Accelerator(cpu=not torch.cuda.is_available()))

    @property
    def count(self) -> int:
        return self.accelerator.num_processes if self.accelerator else 1

    @property
    def rank(self) -> int:
        return self.accelerator.process_index if self.accelerator else 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str | None) -> str | None:
        """Each process its own device (cuda:0, cuda:1, ...) when launched together."""
        return str(self.accelerator.device) if self.accelerator else requested

    def prepare(self, model: Any, optimizer: torch.optim.Optimizer) -> tuple[Any, Any]:
        if self.accelerator is None:
            return model, optimizer
        prepared_model, prepared_optimizer = self.accelerator.prepare(model, optimizer)
        return prepared_model, prepared_optimizer

    def backward(self, loss: torch.Tensor) -> None:
        if self.accelerator is None:
            loss.backward()
        else:
            self.accelerator.backward(loss)

    def clip_grad_norm(self, parameters: Iterable[torch.nn.Parameter], max_norm: float) -> None:
        if self.accelerator is None:
            torch.nn.utils.clip_grad_norm_(list(parameters), max_norm)
        else:
            self.accelerator.clip_grad_norm_(parameters, max_norm)

    def unwrap(self, model: Any) -> Any:
        """The model itself, without the DistributedDataParallel wrapper."""
        return self.accelerator.unwrap_model(model) if self.accelerator else model

    def mean(self, value: float) -> float:
        if self.accelerator is None:
            return value
        return float(
            self.accelerator.reduce(torch.tensor([value], device=self.accelerator.device), "mean")
        )

    def any(self, flag: bool) -> bool:
        """True everywhere when true in some process, so all stop at the same step."""
        if self.accelerator is None:
            return flag
        total = self.accelerator.reduce(
            torch.tensor([int(flag)], device=self.accelerator.device), "sum"
        )
        return bool(total.item())

    def wait(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()
