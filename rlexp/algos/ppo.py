"""Proximal Policy Optimization (Schulman et al. 2017): clipped surrogate, GAE, minibatch epochs.

Reads top to bottom: the rollout comes from ``OnPolicy``; each update runs several epochs
of shuffled minibatches with the clipped objective, an optionally clipped value loss and an
entropy bonus.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from rlexp.algos.common import explained_variance, normalize
from rlexp.algos.onpolicy import OnPolicy
from rlexp.config import PPOConfig
from rlexp.errors import ConfigError


def clipped_surrogate_loss(advantages: torch.Tensor, ratio: torch.Tensor, clip: float) -> torch.Tensor:
    """PPO's pessimistic objective, as a loss: mean of max(-A r, -A clip(r, 1-eps, 1+eps)).

    Outside the clip range on the side the advantage favours, the clipped term wins and
    the gradient with respect to the ratio is zero.
    """
    return torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip, 1 + clip)).mean()


class PPO(OnPolicy):
    """On-policy actor-critic with the clipped surrogate objective."""

    cfg: PPOConfig

    def __init__(self, cfg: PPOConfig, obs_space, action_space, network, device, seed, num_envs, compute=None,
                 total_steps=None, env_model=None):
        if cfg.rollout_steps * num_envs < cfg.num_minibatches:
            raise ConfigError(
                f"algo.num_minibatches={cfg.num_minibatches} exceeds the rollout of "
                f"{cfg.rollout_steps * num_envs} transitions (algo.rollout_steps x env.num_envs)"
            )
        super().__init__(cfg, obs_space, action_space, network, device, seed, num_envs, compute, total_steps, env_model)
        self.optimizer = torch.optim.Adam([self.flat_params], lr=cfg.lr, eps=cfg.optimizer_eps, fused=True)
        self.generator = torch.Generator().manual_seed(seed)  # minibatch shuffles

    def update(self, advantages: torch.Tensor, returns: torch.Tensor, step: int) -> dict[str, float]:
        """Epochs of minibatch updates on the full rollout."""
        c = self.cfg
        left = self.progress_left(step)
        if c.anneal_lr:
            self.optimizer.param_groups[0]["lr"] = c.lr * left
        clip = c.clip_coef * left if c.anneal_clip else c.clip_coef
        r = self.rollout
        b_obs, b_actions = r.obs.flatten(0, 1), r.actions.flatten(0, 1)
        b_logprobs, b_values = r.logprobs.flatten(), r.values.flatten()
        b_adv, b_returns = advantages.flatten(), returns.flatten()
        batch = b_logprobs.numel()
        minibatch = batch // c.num_minibatches
        stats: dict[str, list[torch.Tensor]] = {k: [] for k in ("policy", "value", "entropy", "kl", "clipfrac")}
        for _ in range(c.update_epochs):
            order = torch.randperm(batch, generator=self.generator).to(self.device)
            for start in range(0, minibatch * c.num_minibatches, minibatch):
                idx = order[start : start + minibatch]
                out, value = self.forward(b_obs[idx])
                new_logprob, entropy = self.net.head.log_prob_entropy(out, b_actions[idx])
                logratio = new_logprob - b_logprobs[idx]
                ratio = logratio.exp()
                adv = normalize(b_adv[idx]) if c.norm_adv else b_adv[idx]
                policy_loss = clipped_surrogate_loss(adv, ratio, clip)
                if c.clip_value_loss:
                    clipped = b_values[idx] + (value - b_values[idx]).clamp(-clip, clip)
                    value_loss = 0.5 * torch.max((value - b_returns[idx]) ** 2, (clipped - b_returns[idx]) ** 2).mean()
                else:
                    value_loss = 0.5 * F.mse_loss(value, b_returns[idx])
                entropy = entropy.mean()
                self.optimizer_step(policy_loss - c.ent_coef * entropy + c.vf_coef * value_loss)
                with torch.no_grad():
                    kl = ((ratio - 1) - logratio).mean()  # the low-variance estimator (Schulman)
                    for key, v in (("policy", policy_loss), ("value", value_loss), ("entropy", entropy), ("kl", kl),
                                   ("clipfrac", ((ratio - 1).abs() > clip).float().mean())):
                        stats[key].append(v.detach())
            if c.target_kl is not None and kl.item() > c.target_kl:
                break
        mean = {k: torch.stack(v).mean().item() for k, v in stats.items()}
        return {
            "loss/policy": mean["policy"], "loss/value": mean["value"], "loss/entropy": mean["entropy"],
            "train/approx_kl": mean["kl"], "train/clipfrac": mean["clipfrac"],
            "train/explained_variance": explained_variance(b_values, b_returns),
            "train/updates": float(self.updates),
        }

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state["generator"])
