"""Restoring vector envs on resume: their state cannot be saved as data, but gymnasium's and
ALE's envs are deterministic given their seed and actions, so every vector step's actions are
logged and replayed from the same seed; a digest of the observation checks the result."""

from __future__ import annotations

import hashlib

import gymnasium as gym
import numpy as np
import torch


class ActionLog:
    """Every vector step's actions since the first reset, in a compact dtype (1 byte per env
    and step for up to 256 discrete actions)."""

    def __init__(self, action_space: gym.Space):
        self.env_dtype = np.dtype(action_space.dtype)  # what envs.step takes back (ALE insists on int32/int64)
        if isinstance(action_space, gym.spaces.Discrete):
            n = int(action_space.start) + int(action_space.n)
            self.dtype = np.uint8 if n <= 256 else np.int32
        else:
            self.dtype = np.dtype(action_space.dtype)
        self._blocks: list[np.ndarray] = []  # (steps, num_envs, ...) arrays, oldest first
        self._pending: list[np.ndarray] = []  # single steps not yet stacked into a block
        self._steps = 0

    def append(self, actions: np.ndarray) -> None:
        self._pending.append(actions.astype(self.dtype))  # a copy, in the compact dtype
        self._steps += 1

    def __len__(self) -> int:
        return self._steps

    def tensor(self) -> torch.Tensor:
        """All steps as one (steps, num_envs, ...) tensor."""
        if self._pending:
            self._blocks.append(np.stack(self._pending))
            self._pending = []
        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks)]
        return torch.from_numpy(self._blocks[0]) if self._blocks else torch.zeros(0)

    def load(self, saved: torch.Tensor) -> None:
        self._blocks = [saved.numpy().astype(self.dtype)] if len(saved) else []
        self._pending = []
        self._steps = len(saved)

    def replay(self, envs: gym.vector.VectorEnv, obs: np.ndarray) -> np.ndarray:
        """Step freshly reset ``envs`` (whose first observation is ``obs``) through every logged
        step; returns the observation after the last one."""
        if self._steps:
            for actions in self.tensor().numpy().astype(self.env_dtype):
                obs, *_ = envs.step(actions)
        return obs


def obs_digest(obs: np.ndarray) -> str:
    """SHA-256 of an observation batch: checks that a replay reached the saved state."""
    return hashlib.sha256(np.ascontiguousarray(obs).tobytes()).hexdigest()
