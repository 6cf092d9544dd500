"""Uniform experience replay, stored as preallocated torch tensors.

On CPU the tensors share memory with numpy arrays, so adding a transition is a numpy slice
assignment (no per-step tensor construction); sampling indexes the tensors directly, which
yields batches ready for the network. On CUDA the storage lives on the GPU and sampling
never leaves it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class ReplayBatch(NamedTuple):
    """Transitions; every field has the same leading shape (``batch`` or ``(updates, batch)``)."""

    obs: torch.Tensor
    actions: torch.Tensor  # int64 (discrete), or float32 vectors (continuous)
    rewards: torch.Tensor  # float32
    next_obs: torch.Tensor  # the real next observation (the final one when an episode ended)
    terminated: torch.Tensor  # float32, 1.0 where the episode terminated (no bootstrap)


class ReplayBuffer:
    """A ring buffer of transitions with uniform sampling.

    ``terminated`` marks true terminal states only: truncated transitions keep
    ``terminated=0`` and their real final observation, so the target bootstraps from it.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type,
        device: torch.device | str = "cpu",
        seed: int = 0,
        num_envs: int = 1,
        action_shape: tuple[int, ...] = (),
        action_dtype: torch.dtype = torch.int64,
    ):
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        self.capacity = int(capacity)
        self.device = torch.device(device)
        torch_obs_dtype = torch.from_numpy(np.zeros(0, dtype=obs_dtype)).dtype
        kw = {"device": self.device}
        self.obs = torch.zeros((capacity, *obs_shape), dtype=torch_obs_dtype, **kw)
        self.next_obs = torch.zeros((capacity, *obs_shape), dtype=torch_obs_dtype, **kw)
        self.actions = torch.zeros((capacity, *action_shape), dtype=action_dtype, **kw)
        self.rewards = torch.zeros(capacity, dtype=torch.float32, **kw)
        self.terminated = torch.zeros(capacity, dtype=torch.float32, **kw)
        self._fields = (self.obs, self.actions, self.rewards, self.next_obs, self.terminated)
        # numpy views for cheap writes when the storage is host memory
        self._np = tuple(t.numpy() for t in self._fields) if self.device.type == "cpu" else None
        self.pos = 0  # next slot to write
        self.size = 0  # filled slots
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        episode_end: np.ndarray | None = None,
    ) -> None:
        """Add one transition per env (arrays with a leading ``num_envs`` axis).

        ``episode_end`` is accepted for symmetry with the frame store; full observations
        need no episode boundaries.
        """
        n = len(actions)
        if n > self.capacity:
            raise ValueError(f"cannot add {n} transitions at once to a buffer of capacity {self.capacity}")
        end = self.pos + n
        idx = slice(self.pos, end) if end <= self.capacity else np.arange(self.pos, end) % self.capacity
        values = (obs, actions, rewards, next_obs, terminated)
        if self._np is not None:
            for store, value in zip(self._np, values):
                store[idx] = value
        else:
            tidx = idx if isinstance(idx, slice) else torch.as_tensor(idx, device=self.device)
            for store, value in zip(self._fields, values):
                store[tidx] = torch.as_tensor(np.asarray(value), device=self.device, dtype=store.dtype)
        self.pos = end % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, num_batches: int | None = None) -> ReplayBatch:
        """Sample uniformly with replacement.

        Args:
            batch_size: transitions per batch.
            num_batches: if given, sample that many batches at once; fields get shape
                ``(num_batches, batch_size, ...)``. One gather instead of many is what makes
                a burst of updates cheap.
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        shape = (batch_size,) if num_batches is None else (num_batches, batch_size)
        idx = torch.randint(0, self.size, shape, device=self.device, generator=self.generator)
        return ReplayBatch(*(field[idx] for field in self._fields))

    def state_dict(self) -> dict:
        """Contents and cursor (only the filled part)."""
        n = self.size
        return {
            "pos": self.pos,
            "size": n,
            "fields": [f[:n].cpu().clone() for f in self._fields],
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        n = state["size"]
        for field, saved in zip(self._fields, state["fields"]):
            field[:n] = saved.to(self.device)
        self.pos, self.size = state["pos"], n
        self.generator.set_state(state["generator"])
