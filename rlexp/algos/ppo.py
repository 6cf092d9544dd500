"""Proximal Policy Optimization (Schulman et al. 2017): clipped surrogate, GAE, minibatch epochs.

Reads top to bottom: sample actions (keeping their log-probs and values), fill the rollout,
compute GAE advantages, then several epochs of minibatch updates on the rollout.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Categorical

from rlexp.algos.base import Algorithm
from rlexp.config import ConfigError, PPOConfig
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


def clipped_surrogate_loss(advantages: torch.Tensor, ratio: torch.Tensor, clip: float) -> torch.Tensor:
    """PPO's pessimistic objective, as a loss: mean of max(-A r, -A clip(r, 1-eps, 1+eps)).

    Outside the clip range on the side the advantage favours, the clipped term wins and
    the gradient with respect to the ratio is zero.
    """
    return torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip, 1 + clip)).mean()


class PPO(Algorithm):
    """On-policy actor-critic with the clipped surrogate objective."""

    cfg: PPOConfig

    def __init__(self, cfg: PPOConfig, obs_space, action_space, network, device, seed, num_envs, compute=None,
                 total_steps=None):
        super().__init__(cfg, obs_space, action_space, network, device, seed, num_envs, compute, total_steps)
        if cfg.rollout_steps * num_envs < cfg.num_minibatches:
            raise ConfigError(
                f"algo.num_minibatches={cfg.num_minibatches} exceeds the rollout of "
                f"{cfg.rollout_steps * num_envs} transitions (algo.rollout_steps x env.num_envs)"
            )
        self.net = build_actor_critic(network, obs_space, action_space).to(device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, eps=cfg.optimizer_eps)
        self.generator = torch.Generator().manual_seed(seed)  # minibatch shuffles
        steps, shape = cfg.rollout_steps, (cfg.rollout_steps, num_envs)
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
        self._steps = steps

    # ------------------------------------------------------------------ acting

    def _progress_left(self, step: int) -> float:
        """1 at the start of the run, 0 at its end (for annealing)."""
        if not self.total_steps:
            return 1.0
        return max(0.0, 1.0 - step / self.total_steps)

    @torch.no_grad()
    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        obs_t = torch.as_tensor(obs, device=self.device)
        logits, value = self.net(obs_t)
        dist = Categorical(logits=logits)
        action = dist.sample()
        self._pending = (obs_t, action, dist.log_prob(action), value)
        return action.cpu().numpy()

    @torch.no_grad()
    def predict(self, obs: np.ndarray) -> np.ndarray:
        logits, _ = self.net(torch.as_tensor(obs, device=self.device))
        return logits.argmax(dim=1).cpu().numpy()  # the policy's mode

    def schedules(self, step: int) -> dict[str, float]:
        return {"train/lr": self.optimizer.param_groups[0]["lr"]}

    # ------------------------------------------------------------------ learning

    def observe(self, obs, actions, rewards, next_obs, terminated, truncated, step, episode_end=None):
        if self._pending is None:
            raise RuntimeError("PPO.observe() needs the act() call of the same step first")
        c = self.cfg
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
                reward[torch.as_tensor(cut, device=self.device)] += c.gamma * self.net.value(final)
        t = self.pos
        self.obs[t], self.actions[t], self.logprobs[t], self.values[t] = obs_t, action, logprob, value
        self.rewards[t] = reward
        self.dones[t] = torch.as_tensor(episode_end, dtype=torch.float32, device=self.device)
        self.pos += 1
        if self.pos < self._steps:
            return {}
        self.pos = 0
        with torch.no_grad():
            next_value = self.net.value(torch.as_tensor(next_obs, device=self.device))
        return self.update(next_value, step + len(actions))

    def update(self, next_value: torch.Tensor, step: int) -> dict[str, float]:
        """Epochs of minibatch updates on the full rollout."""
        c = self.cfg
        left = self._progress_left(step)
        if c.anneal_lr:
            self.optimizer.param_groups[0]["lr"] = c.lr * left
        clip = c.clip_coef * left if c.anneal_clip else c.clip_coef
        advantages, returns = compute_gae(self.rewards, self.values, self.dones, next_value, c.gamma, c.gae_lambda)
        b_obs = self.obs.flatten(0, 1)
        b_actions, b_logprobs = self.actions.flatten(), self.logprobs.flatten()
        b_adv, b_returns, b_values = advantages.flatten(), returns.flatten(), self.values.flatten()
        batch = b_actions.numel()
        minibatch = batch // c.num_minibatches
        stats: dict[str, list[torch.Tensor]] = {k: [] for k in ("policy", "value", "entropy", "kl", "clipfrac")}
        for _ in range(c.update_epochs):
            order = torch.randperm(batch, generator=self.generator).to(self.device)
            for start in range(0, minibatch * c.num_minibatches, minibatch):
                idx = order[start : start + minibatch]
                logits, value = self.net(b_obs[idx])
                dist = Categorical(logits=logits)
                logratio = dist.log_prob(b_actions[idx]) - b_logprobs[idx]
                ratio = logratio.exp()
                adv = b_adv[idx]
                if c.norm_adv and len(idx) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                policy_loss = clipped_surrogate_loss(adv, ratio, clip)
                if c.clip_value_loss:
                    clipped = b_values[idx] + (value - b_values[idx]).clamp(-clip, clip)
                    value_loss = 0.5 * torch.max((value - b_returns[idx]) ** 2, (clipped - b_returns[idx]) ** 2).mean()
                else:
                    value_loss = 0.5 * F.mse_loss(value, b_returns[idx])
                entropy = dist.entropy().mean()
                loss = policy_loss - c.ent_coef * entropy + c.vf_coef * value_loss
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if c.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(self.net.parameters(), c.max_grad_norm)
                self.optimizer.step()
                self.updates += 1
                with torch.no_grad():
                    kl = ((ratio - 1) - logratio).mean()  # the low-variance estimator (Schulman)
                    for key, v in (("policy", policy_loss), ("value", value_loss), ("entropy", entropy), ("kl", kl),
                                   ("clipfrac", ((ratio - 1).abs() > clip).float().mean())):
                        stats[key].append(v.detach())
            if c.target_kl is not None and kl.item() > c.target_kl:
                break
        variance = b_returns.var()
        explained = 1 - (b_returns - b_values).var() / variance if variance > 0 else torch.tensor(float("nan"))
        mean = {k: torch.stack(v).mean().item() for k, v in stats.items()}
        return {
            "loss/policy": mean["policy"], "loss/value": mean["value"], "loss/entropy": mean["entropy"],
            "train/approx_kl": mean["kl"], "train/clipfrac": mean["clipfrac"],
            "train/explained_variance": float(explained), "train/updates": float(self.updates),
        }

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = state["updates"]
        self.generator.set_state(state["generator"])
