"""Data parallelism for the language-model stages, through ``accelerate``'s ``Accelerator``,
under ``accelerate launch`` (or ``torchrun``).

    accelerate launch --multi_gpu --num_processes 4 -m rlexp train algo=sft model.from_run=RUN
    accelerate launch --multi_gpu --num_processes 2 -m rlexp train algo=grpo ... device=cpu   # two CPU processes

Every process builds the same model from the same seed and draws the same batch; each takes
its share of it (``shard``). The trainer hands the module its updates run through and its
optimizer to :meth:`DataParallel.prepare`, and backpropagates and clips through it, so the
``Accelerator`` does the rest as the launch configured it: DistributedDataParallel by
default (gradients averaged over the processes before each step, so the models stay
identical and a step sees the whole batch), or DeepSpeed or FSDP when ``accelerate config``
chose them. Generation, evaluation, exports and state use the module itself (``unwrap``).
Process 0 writes the run directory; the others run the same lifecycle into a temporary
directory with no sinks (:func:`rlexp.train.run`). Launched with one process, or not
launched, no ``Accelerator`` is made and everything runs as written.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import torch


def launched_world() -> tuple[int, int]:
    """(this process's rank, the number of processes) from the launcher's environment; (0, 1) alone."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def barrier() -> None:
    """Wait for every process of a launched run (nothing when there is one)."""
    if launched_world()[1] > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


class DataParallel:
    """The processes of a launched run (one, when not launched), and the ``Accelerator`` that
    joins them."""

    def __init__(self, device: torch.device):
        self.rank, self.world = launched_world()
        self.device = device
        self.accelerator = None
        if self.world > 1:
            from accelerate import Accelerator

            self.accelerator = Accelerator(cpu=device.type == "cpu")
            self.rank, self.world = self.accelerator.process_index, self.accelerator.num_processes
            if device.type == "cuda":
                self.device = self.accelerator.device  # one GPU per process

    def prepare(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[Any, Any]:
        """(the module the updates run through, their optimizer): wrapped by the ``Accelerator``
        as the launch configured it (DDP, DeepSpeed, FSDP); unchanged in one process."""
        if self.accelerator is None:
            return module, optimizer
        return self.accelerator.prepare(module, optimizer)

    def backward(self, loss: torch.Tensor) -> None:
        if self.accelerator is None:
            loss.backward()
        else:
            self.accelerator.backward(loss)

    def clip_grad_norm_(self, params: Iterable[torch.nn.Parameter], max_norm: float) -> None:
        if self.accelerator is None:
            torch.nn.utils.clip_grad_norm_(params, max_norm)
        else:
            self.accelerator.clip_grad_norm_(params, max_norm)

    def shard(self, items: Sequence[Any], group: int = 1) -> list[Any]:
        """This process's share of ``items``, in whole groups of ``group`` consecutive items
        (GRPO: the answers to one prompt stay together)."""
        if self.world == 1:
            return list(items)
        groups = [items[k:k + group] for k in range(0, len(items), group)]
        return [item for g in groups[self.rank::self.world] for item in g]

    def mean(self, value: float) -> float:
        """``value`` averaged over the processes (metrics)."""
        if self.accelerator is None:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.accelerator.device)
        return float(self.accelerator.reduce(t, reduction="mean").item())
