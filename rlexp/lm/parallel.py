"""Data parallelism for the language-model stages, under ``accelerate launch`` (or ``torchrun``).

    accelerate launch --multi_gpu --num_processes 4 -m rlexp train algo=sft model.from_run=RUN
    accelerate launch --multi_gpu --num_processes 2 -m rlexp train algo=grpo ... device=cpu   # two CPU processes

Every process builds the same model from the same seed and draws the same batch; each takes
its share of it (``shard``), and the gradients are averaged over the processes before each
optimizer step (``average_gradients``: one flat all-reduce), so the models stay identical
and a step sees the whole batch, as DistributedDataParallel does. ``accelerate``'s
``PartialState`` sets up the process group (NCCL on GPUs, one per process; gloo on CPUs).
Process 0 writes the run directory; the others run the same lifecycle into a temporary
directory with no sinks (:func:`rlexp.train.run`). Launched with one process, or not
launched, nothing changes.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import torch


def launched_world() -> tuple[int, int]:
    """(this process's rank, the number of processes) from the launcher's environment; (0, 1) alone."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def barrier() -> None:
    """Wait for every process of a launched run (nothing when there is one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


class DataParallel:
    """The processes of a launched run (one, when not launched)."""

    def __init__(self, device: torch.device):
        self.rank, self.world = launched_world()
        self.device = device
        if self.world > 1:
            from accelerate import PartialState

            state = PartialState(cpu=device.type == "cpu")
            self.rank, self.world = state.process_index, state.num_processes
            if device.type == "cuda":
                self.device = state.device  # one GPU per process

    def shard(self, items: Sequence[Any], group: int = 1) -> list[Any]:
        """This process's share of ``items``, in whole groups of ``group`` consecutive items
        (GRPO: the answers to one prompt stay together)."""
        if self.world == 1:
            return list(items)
        groups = [items[k:k + group] for k in range(0, len(items), group)]
        return [item for g in groups[self.rank::self.world] for item in g]

    def average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """Every parameter's gradient averaged over the processes (a parameter without one counts as 0)."""
        if self.world == 1:
            return
        import torch.distributed as dist

        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p, g in zip(params, grads):
            n = g.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n

    def mean(self, value: float) -> float:
        """``value`` averaged over the processes (metrics)."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64)
        if self.device.type == "cuda":
            t = t.to(self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world
