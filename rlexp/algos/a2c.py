"""Advantage actor-critic, synchronous (A2C; Mnih et al. 2016): one gradient step per rollout.

Reads top to bottom: the rollout and its n-step (or GAE) advantages come from ``OnPolicy``;
the update is the policy gradient with the advantage as baseline-corrected return, plus a
value regression and an entropy bonus.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlexp.algos.common import explained_variance, normalize
from rlexp.algos.flat_adam import FlatAdam
from rlexp.algos.onpolicy import OnPolicy
from rlexp.config import A2CConfig


class A2C(OnPolicy):
    """Synchronous advantage actor-critic over the vector env's copies."""

    cfg: A2CConfig

    def __init__(self, cfg: A2CConfig, obs_space, action_space, network, device, seed, num_envs, compute=None,
                 total_steps=None, env_model=None):
        super().__init__(cfg, obs_space, action_space, network, device, seed, num_envs, compute, total_steps, env_model)
        if cfg.optimizer == "rmsprop":
            self.optimizer = torch.optim.RMSprop([self.flat_params], lr=cfg.lr, alpha=cfg.rmsprop_alpha, eps=cfg.optimizer_eps)
        else:
            self.optimizer = FlatAdam(self.flat_params, lr=cfg.lr, eps=cfg.optimizer_eps)

    def update(self, advantages: torch.Tensor, returns: torch.Tensor, step: int) -> dict[str, float]:
        c = self.cfg
        if c.anneal_lr:
            self.optimizer.param_groups[0]["lr"] = c.lr * self.progress_left(step)
        r = self.rollout
        out, values = self.forward(r.obs.flatten(0, 1))
        logprob, entropy = self.net.head.log_prob_entropy(out, r.actions.flatten(0, 1))
        adv = normalize(advantages.flatten()) if c.norm_adv else advantages.flatten()
        policy_loss = -(adv * logprob).mean()
        value_loss = F.mse_loss(values, returns.flatten())
        entropy = entropy.mean()
        self.optimizer_step(policy_loss - c.ent_coef * entropy + c.vf_coef * value_loss)
        return {
            "loss/policy": policy_loss.item(), "loss/value": value_loss.item(), "loss/entropy": entropy.item(),
            "train/explained_variance": explained_variance(r.values.flatten(), returns.flatten()),
            "train/updates": float(self.updates),
        }
