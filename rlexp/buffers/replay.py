"""Experience replay, stored as preallocated torch tensors: uniform or prioritized, one-step
or n-step.

On CPU the tensors share memory with numpy arrays, so adding a transition is a numpy slice
assignment (no per-step tensor construction); sampling indexes the tensors directly, which
yields batches ready for the network. On CUDA the storage lives on the GPU and sampling
never leaves it.

n-step returns are made at sample time from the stored one-step transitions (as Dopamine
does), so the buffer holds each transition once whatever ``n`` is: env ``e``'s successor of
slot ``j`` is slot ``j + num_envs``, since every ``add`` writes one row per env in order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from rlexp.buffers.prioritized import Priorities, n_step_returns


class ReplayBatch(NamedTuple):
    """Transitions; every field has the same leading shape (``batch`` or ``(updates, batch)``).

    The last three fields are None unless the buffer makes n-step returns (``discounts``) or
    samples by priority (``weights``, ``indices``).
    """

    obs: torch.Tensor
    actions: torch.Tensor  # int64 (discrete), or float32 vectors (continuous)
    rewards: torch.Tensor  # float32; with n-step returns, the discounted sum of up to n rewards
    next_obs: torch.Tensor  # the real next observation (the final one when an episode ended); n steps on with n-step
    terminated: torch.Tensor  # float32, 1.0 where the episode terminated (no bootstrap)
    discounts: torch.Tensor | None = None  # float32, gamma ** (steps in the return): the bootstrap's discount
    weights: torch.Tensor | None = None  # float32 importance-sampling weights (largest 1 in each batch)
    indices: torch.Tensor | None = None  # int64 flat slots, to hand back new priorities

    def to(self, device: torch.device) -> "ReplayBatch":
        """The batch on ``device`` (through pinned memory: the copies overlap the compute)."""
        return ReplayBatch(*(None if t is None else t.pin_memory().to(device, non_blocking=True) for t in self))


class ReplayBuffer:
    """A ring buffer of transitions, sampled uniformly or by priority, one-step or n-step.

    ``terminated`` marks true terminal states only: truncated transitions keep
    ``terminated=0`` and their real final observation, so the target bootstraps from it.

    Args:
        capacity: transitions held.
        obs_shape, obs_dtype: one observation.
        device: where the storage lives.
        seed: seeds the sampling generator.
        num_envs: rows per ``add`` (one per env, in the same order every time).
        action_shape, action_dtype: one action (a scalar index by default).
        n_step: transitions folded into each sampled return (1: the stored transition).
        gamma: the discount of the n-step returns.
        priority_exponent: None samples uniformly; a number samples by priority (see
            :class:`~rlexp.buffers.prioritized.Priorities`).
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
        n_step: int = 1,
        gamma: float = 0.99,
        priority_exponent: float | None = None,
    ):
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        self.capacity = int(capacity)
        self.device = torch.device(device)
        torch_obs_dtype = torch.from_numpy(np.zeros(0, dtype=obs_dtype)).dtype
        kw = {"device": self.device}
        self.obs = torch.zeros((capacity, *obs_shape), dtype=torch_obs_dtype, **kw)
        self.next_obs = torch.zeros((capacity, *obs_shape), dtype=torch_obs_dtype, **kw)
        self.actions = torch.zeros((capacity, *action_shape), dtype=action_dtype, **kw)
        self.rewards = torch.zeros(capacity, dtype=torch.float32, **kw)
        self.terminated = torch.zeros(capacity, dtype=torch.float32, **kw)
        # where an episode ended (terminated or truncated): an n-step return stops there
        self.episode_end = torch.zeros(capacity, dtype=torch.bool, **kw)
        self._fields = (self.obs, self.actions, self.rewards, self.next_obs, self.terminated, self.episode_end)
        # numpy views for cheap writes when the storage is host memory
        self._np = tuple(t.numpy() for t in self._fields) if self.device.type == "cpu" else None
        self.pos = 0  # next slot to write
        self.size = 0  # filled slots
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.num_envs = int(num_envs)
        self.n_step, self.gamma = int(n_step), float(gamma)
        self.priorities = None if priority_exponent is None else Priorities(capacity, priority_exponent, self.device)

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

        ``episode_end`` marks where an env's episode ended (terminated or truncated), where
        an n-step return stops; None takes ``terminated``.
        """
        n = len(actions)
        if n > self.capacity:
            raise ValueError(f"cannot add {n} transitions at once to a buffer of capacity {self.capacity}")
        if episode_end is None:
            episode_end = terminated
        end = self.pos + n
        idx = slice(self.pos, end) if end <= self.capacity else np.arange(self.pos, end) % self.capacity
        values = (obs, actions, rewards, next_obs, terminated, episode_end)
        if self._np is not None:
            for store, value in zip(self._np, values):
                store[idx] = value
        else:
            tidx = idx if isinstance(idx, slice) else torch.as_tensor(idx, device=self.device)
            for store, value in zip(self._fields, values):
                store[tidx] = torch.as_tensor(np.asarray(value), device=self.device, dtype=store.dtype)
        if self.priorities is not None:
            self.priorities.set(np.arange(self.pos, end) % self.capacity)
        self.pos = end % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, num_batches: int | None = None, importance_exponent: float = 1.0) -> ReplayBatch:
        """Sample with replacement: uniformly, or in proportion to the priorities.

        Args:
            batch_size: transitions per batch.
            num_batches: if given, sample that many batches at once; fields get shape
                ``(num_batches, batch_size, ...)``. One gather instead of many is what makes
                a burst of updates cheap.
            importance_exponent: beta of the importance-sampling weights (prioritized only).
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        shape = (batch_size,) if num_batches is None else (num_batches, batch_size)
        weights = indices = None
        if self.priorities is None:
            idx = torch.randint(0, self.size, shape, device=self.device, generator=self.generator)
        else:
            idx, weights = self.priorities.sample(shape, self.size, self.generator, importance_exponent)
            indices = idx
        obs, actions, rewards, next_obs, terminated = (field[idx] for field in self._fields[:5])
        discounts = None
        if self.n_step > 1:
            rewards, next_obs, terminated, discounts = self._n_step(idx)
        return ReplayBatch(obs, actions, rewards, next_obs, terminated, discounts, weights, indices)

    def _n_step(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(returns, next_obs, terminated, discounts) of the n-step returns from slots ``idx``."""
        k = torch.arange(self.n_step, device=self.device)
        age = (self.pos - 1 - idx) % self.capacity  # transitions written after idx, over every env
        available = (k * self.num_envs) <= age.unsqueeze(-1)
        slots = (idx.unsqueeze(-1) + k * self.num_envs) % self.capacity
        stops = self.episode_end[slots] | self.terminated[slots].bool()
        returns, last, discounts = n_step_returns(self.rewards[slots], stops, available, self.gamma)
        final = slots.gather(-1, last.unsqueeze(-1)).squeeze(-1)
        return returns, self.next_obs[final], self.terminated[final], discounts

    def update_priorities(self, indices: torch.Tensor, errors: torch.Tensor) -> None:
        """Hand back the sampled transitions' errors (prioritized replay)."""
        self.priorities.update(indices, errors)

    def state_dict(self) -> dict:
        """Contents and cursor (only the filled part)."""
        n = self.size
        state = {
            "pos": self.pos,
            "size": n,
            "fields": [f[:n].cpu().clone() for f in self._fields],
            "generator": self.generator.get_state(),
        }
        if self.priorities is not None:
            state["priorities"] = self.priorities.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        n = state["size"]
        for field, saved in zip(self._fields, state["fields"]):
            field[:n] = saved.to(self.device)
        self.pos, self.size = state["pos"], n
        self.generator.set_state(state["generator"])
        if self.priorities is not None:
            self.priorities.load_state_dict(state["priorities"])
