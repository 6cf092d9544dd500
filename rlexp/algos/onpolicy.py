"""On-policy actor-critics: a rollout of ``rollout_steps`` per env, then an update on it.

``OnPolicy`` samples actions (keeping their log-probs and values), fills the rollout,
bootstraps truncated episodes, and hands the full rollout with its GAE advantages to the
subclass's ``update`` (PPO: epochs of clipped minibatch steps; A2C: one gradient step).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np
import torch

from rlexp.algos.base import Algorithm
from rlexp.networks import build_actor_critic


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


class ActorCriticLearner:
    """What every actor-critic learner shares: one optimizer step and its saved state.

    Mixed into classes that set ``self.net``, ``self.optimizer``, ``self.updates`` and
    ``self.cfg.max_grad_norm``.
    """

    def _clip_and_step(self) -> None:
        if self.cfg.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = state["updates"]


class OnPolicy(ActorCriticLearner, Algorithm):
    """Rollout collection shared by the on-policy algorithms; subclasses implement ``update``."""

    def __init__(self, cfg, obs_space, action_space, network, device, seed, num_envs, compute=None,
                 total_steps=None):
        super().__init__(cfg, obs_space, action_space, network, device, seed, num_envs, compute, total_steps)
        self.net = build_actor_critic(network, obs_space, action_space).to(device)
        shape = (cfg.rollout_steps, num_envs)
        obs_dtype = torch.from_numpy(np.zeros(0, dtype=obs_space.dtype)).dtype
        self.obs = torch.zeros((*shape, *obs_space.shape), dtype=obs_dtype, device=device)
        self.actions = torch.zeros(shape, dtype=torch.int64, device=device)
        self.logprobs = torch.zeros(shape, device=device)
        self.values = torch.zeros(shape, device=device)
        self.rewards = torch.zeros(shape, device=device)
        self.dones = torch.zeros(shape, device=device)
        self.pos = 0  # next rollout row
        self._pending: tuple[torch.Tensor, ...] | None = None  # what act() computed, for observe()
        self.updates = 0  # gradient updates made

    def _progress_left(self, step: int) -> float:
        """1 at the start of the run, 0 at its end (for annealing)."""
        if not self.total_steps:
            return 1.0
        return max(0.0, 1.0 - step / self.total_steps)

    @torch.no_grad()
    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        obs_t = torch.as_tensor(obs, device=self.device)
        logits, value = self.net(obs_t)
        log_probs = torch.log_softmax(logits, dim=1)  # a Categorical object per step costs more than this
        action = torch.multinomial(log_probs.exp(), 1).squeeze(1)
        self._pending = (obs_t, action, log_probs.gather(1, action.unsqueeze(1)).squeeze(1), value)
        return action.cpu().numpy()

    @torch.no_grad()
    def predict(self, obs: np.ndarray) -> np.ndarray:
        logits, _ = self.net(torch.as_tensor(obs, device=self.device))
        return logits.argmax(dim=1).cpu().numpy()  # the policy's mode

    def schedules(self, step: int) -> dict[str, float]:
        return {"train/lr": self.optimizer.param_groups[0]["lr"]}

    def observe(self, obs, actions, rewards, next_obs, terminated, truncated, step, episode_end=None):
        if self._pending is None:
            raise RuntimeError(f"{type(self).__name__}.observe() needs the act() call of the same step first")
        obs_t, action, logprob, value = self._pending
        self._pending = None
        if episode_end is None:
            episode_end = np.logical_or(terminated, truncated)
        reward = torch.as_tensor(rewards, dtype=torch.float32, device=self.device).clone()
        cut = np.logical_and(truncated, np.logical_not(terminated))
        if cut.any():
            # truncation is not termination: bootstrap from the real final observation's value
            with torch.no_grad():
                final = torch.as_tensor(next_obs[cut], device=self.device)
                reward[torch.as_tensor(cut, device=self.device)] += self.cfg.gamma * self.net.value(final)
        t = self.pos
        self.obs[t], self.actions[t], self.logprobs[t], self.values[t] = obs_t, action, logprob, value
        self.rewards[t] = reward
        self.dones[t] = torch.as_tensor(episode_end, dtype=torch.float32, device=self.device)
        self.pos += 1
        if self.pos < self.cfg.rollout_steps:
            return {}
        self.pos = 0
        with torch.no_grad():
            next_value = self.net.value(torch.as_tensor(next_obs, device=self.device))
        advantages, returns = compute_gae(
            self.rewards, self.values, self.dones, next_value, self.cfg.gamma, self.cfg.gae_lambda
        )
        return self.update(advantages, returns, step + len(actions))

    @abstractmethod
    def update(self, advantages: torch.Tensor, returns: torch.Tensor, step: int) -> dict[str, float]:
        """Learn from the full rollout (``self.obs``, ``self.actions``, ...) and its advantages."""

