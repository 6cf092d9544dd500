"""Rollout storage for on-policy learners: one fixed-length rollout, overwritten each update.

Kept apart from the replay buffers: an on-policy learner uses each transition once, in
rollout order, with the log-prob and value its collecting policy gave it.
"""

from __future__ import annotations

import numpy as np
import torch


class RolloutBuffer:
    """(steps, num_envs) transitions as preallocated tensors on the learner's device.

    ``dones[t]`` marks that transition t ended its episode (terminated or truncated);
    a truncated transition's reward already carries its bootstrap (``OnPolicy.observe``).
    """

    def __init__(
        self,
        steps: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type,
        action_shape: tuple[int, ...],
        action_dtype: torch.dtype,
        device: torch.device | str = "cpu",
    ):
        shape = (steps, num_envs)
        torch_obs_dtype = torch.from_numpy(np.zeros(0, dtype=obs_dtype)).dtype
        self.steps = steps
        self.obs = torch.zeros((*shape, *obs_shape), dtype=torch_obs_dtype, device=device)
        self.actions = torch.zeros((*shape, *action_shape), dtype=action_dtype, device=device)
        self.logprobs = torch.zeros(shape, device=device)
        self.values = torch.zeros(shape, device=device)
        self.rewards = torch.zeros(shape, device=device)
        self.dones = torch.zeros(shape, device=device)
        self.pos = 0  # next row

    def add(self, obs, action, logprob, value, reward, done) -> bool:
        """Store one vector step; True when the rollout is full (and the next add starts over)."""
        t = self.pos
        self.obs[t], self.actions[t], self.logprobs[t], self.values[t] = obs, action, logprob, value
        self.rewards[t], self.dones[t] = reward, done
        self.pos = (t + 1) % self.steps
        return self.pos == 0

    FIELDS = ("obs", "actions", "logprobs", "values", "rewards", "dones")

    def state_dict(self) -> dict:
        """The rows filled so far and the cursor (tensors and ints: ``weights_only``-loadable)."""
        return {"pos": self.pos, **{name: getattr(self, name)[: self.pos].cpu().clone() for name in self.FIELDS}}

    def load_state_dict(self, state: dict) -> None:
        pos = int(state["pos"])
        if not 0 <= pos < self.steps:
            raise ValueError(f"rollout state has pos {pos}, this rollout holds {self.steps} steps")
        for name in self.FIELDS:
            store = getattr(self, name)
            store[:pos] = state[name].to(store.device)
        self.pos = pos
