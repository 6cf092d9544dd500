"""On-policy actor-critics: a rollout of ``rollout_steps`` per env, then an update on it.

``OnPolicy`` samples actions (keeping their log-probs and values), fills the rollout,
bootstraps truncated episodes, and hands the full rollout with its GAE advantages to the
subclass's ``update`` (PPO: epochs of clipped minibatch steps; A2C: one gradient step).
The network's policy head makes the same code serve discrete and continuous actions.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np
import torch

from rlexp.algos.actor_critic import ActorCriticAlgorithm
from rlexp.buffers import RolloutBuffer
from rlexp.networks import RunningMeanStd


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimates and returns over a rollout of shape (T, num_envs).

    ``dones[t]`` marks that transition t ended its episode: nothing after it is bootstrapped
    (a truncated transition's bootstrap value is already in its reward, see ``PPO.observe``).
    ``next_value`` is V of the observation after the last step (ignored where it ended).

    Returns:
        (advantages, returns), each (T, num_envs); returns = advantages + values.
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(steps)):
        following = next_value if t == steps - 1 else values[t + 1]
        live = 1.0 - dones[t]
        delta = rewards[t] + gamma * following * live - values[t]
        last = delta + gamma * lam * live * last
        advantages[t] = last
    return advantages, advantages + values


class OnPolicy(ActorCriticAlgorithm):
    """Rollout collection shared by the on-policy algorithms; subclasses implement ``update``."""

    def __init__(self, cfg, obs_space, action_space, network, device, seed, num_envs, compute=None,
                 total_steps=None, env_model=None):
        super().__init__(cfg, obs_space, action_space, network, device, seed, num_envs, compute, total_steps, env_model)
        head = self.net.head
        self.rollout = RolloutBuffer(cfg.rollout_steps, num_envs, obs_space.shape, obs_space.dtype,
                                     head.action_shape, head.action_dtype, device)
        self._pending: tuple[torch.Tensor, ...] | None = None  # what act() computed, for observe()
        # reward scaling: divide by the running std of each env's discounted return (as
        # SB3's VecNormalize and gymnasium's NormalizeReward), statistics kept on the CPU
        self.return_stats = RunningMeanStd() if cfg.normalize_rewards else None
        self._discounted_return = np.zeros(num_envs)

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        obs_t, action, logprob, value, env_action = self.sample(obs)
        self._pending = (obs_t, action, logprob, value)
        return env_action

    def schedules(self, step: int) -> dict[str, float]:
        return {"train/lr": self.optimizer.param_groups[0]["lr"]}

    def _scale_rewards(self, rewards: np.ndarray, episode_end: np.ndarray) -> np.ndarray:
        self._discounted_return = self._discounted_return * self.cfg.gamma + rewards
        self.return_stats.update(torch.from_numpy(self._discounted_return))
        self._discounted_return[episode_end] = 0.0
        return rewards / float((self.return_stats.var + self.return_stats.epsilon).sqrt())

    def observe(self, obs, actions, rewards, next_obs, terminated, truncated, step, episode_end=None):
        if self._pending is None:
            raise RuntimeError(f"{type(self).__name__}.observe() needs the act() call of the same step first")
        obs_t, action, logprob, value = self._pending
        self._pending = None
        if episode_end is None:
            episode_end = np.logical_or(terminated, truncated)
        if self.return_stats is not None:
            rewards = self._scale_rewards(rewards, episode_end)
        reward = torch.as_tensor(rewards, dtype=torch.float32, device=self.device).clone()
        cut = np.logical_and(truncated, np.logical_not(terminated))
        if cut.any():
            # truncation is not termination: bootstrap from the real final observation's value
            with torch.no_grad():
                final = torch.as_tensor(next_obs[cut], device=self.device)
                reward[torch.as_tensor(cut, device=self.device)] += self.cfg.gamma * self.value(final)
        done = torch.as_tensor(episode_end, dtype=torch.float32, device=self.device)
        if not self.rollout.add(obs_t, action, logprob, value, reward, done):
            self.clock.lap("replay")
            return {}
        r = self.rollout
        with torch.no_grad():
            next_value = self.value(torch.as_tensor(next_obs, device=self.device))
        advantages, returns = compute_gae(r.rewards, r.values, r.dones, next_value, self.cfg.gamma, self.cfg.gae_lambda)
        self.clock.lap("replay")
        metrics = self.update(advantages, returns, step + len(actions))
        if self.net.obs_norm is not None:
            # after the update: the rollout was collected, and is learned from, with the same statistics
            self.net.obs_norm.update(r.obs.flatten(0, 1))
        return metrics

    @abstractmethod
    def update(self, advantages: torch.Tensor, returns: torch.Tensor, step: int) -> dict[str, float]:
        """Learn from the full rollout (``self.rollout``) and its advantages."""

    def buffer_state(self) -> dict[str, Any]:
        return {"rollout": self.rollout.state_dict()}

    def load_buffer_state(self, state: dict[str, Any]) -> None:
        self.rollout.load_state_dict(state["rollout"])

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.return_stats is not None:
            state["return_stats"] = self.return_stats.state_dict()
            state["discounted_return"] = self._discounted_return.copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.return_stats is not None:
            self.return_stats.load_state_dict(state["return_stats"])
            self._discounted_return = np.asarray(state["discounted_return"], dtype=np.float64)
