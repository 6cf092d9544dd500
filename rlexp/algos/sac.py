"""Soft Actor-Critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications"):
twin Q networks with Polyak-averaged targets, a tanh-squashed Gaussian policy and an entropy
temperature tuned toward a target entropy (or fixed).

Reads top to bottom: acting (a draw of the policy; its tanh mean to evaluate), then one
update: the critics toward ``r + gamma (min_i Q_target_i(s', a') - alpha log pi(a'|s'))``
with ``a' ~ pi(.|s')``, the actor toward ``min_i Q_i(s, a) - alpha log pi(a|s)``, the
temperature toward the target entropy, the targets.
"""

from __future__ import annotations

from typing import Any

import torch

from rlexp.algos.flat_adam import FlatAdam
from rlexp.algos.off_policy import ContinuousOffPolicy
from rlexp.config import SACConfig
from rlexp.networks import flatten_parameters
from rlexp.networks.continuous import SquashedGaussianActor


def target_entropy(setting: str, action_dim: int) -> float:
    """``auto``: minus the action dimension (Haarnoja et al. 2018's heuristic); else the number."""
    return -float(action_dim) if setting == "auto" else float(setting)


class SAC(ContinuousOffPolicy):
    """Soft Actor-Critic (module docstring)."""

    cfg: SACConfig

    def __init__(self, cfg: SACConfig, obs_space, action_space, network, device, seed, num_envs, compute=None,
                 total_steps=None, env_model=None):
        super().__init__(cfg, obs_space, action_space, network, device, seed, num_envs, compute, total_steps, env_model)
        self.actor = SquashedGaussianActor(self.obs_dim, self.action_dim, list(network.hidden_sizes),
                                           network.activation).to(device)
        self.actor_flat = flatten_parameters(self.actor)
        self.actor_optimizer = FlatAdam(self.actor_flat, lr=cfg.lr)
        self.target_entropy = target_entropy(cfg.target_entropy, self.action_dim)
        self.tuned = cfg.alpha is None
        initial = cfg.alpha_init if self.tuned else cfg.alpha
        self.log_alpha = torch.nn.Parameter(torch.tensor([float(initial)], device=device).log())
        self.log_alpha.grad = torch.zeros_like(self.log_alpha)
        self.alpha_optimizer = FlatAdam(self.log_alpha, lr=cfg.lr)
        self.actor_updates = 0

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()

    def _explore(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor.sample(obs, self.noise)[0]

    def _greedy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor.mode(obs)

    def update(self, obs, actions, rewards, next_obs, terminated) -> dict[str, torch.Tensor]:
        c, alpha = self.cfg, self.alpha
        with torch.no_grad():
            next_actions, next_log_prob = self.actor.sample(next_obs, self.noise)
            next_q = self.critic_target(next_obs, next_actions).amin(0) - alpha * next_log_prob
            targets = self.targets(rewards, terminated, next_q)
        q, critic_loss = self.critic_step(obs, actions, targets)
        metrics = {"loss/critic": critic_loss, "train/q_mean": q.mean()}
        if self.updates % c.actor_update_interval_updates == 0:
            metrics.update(self._actor_step(obs, alpha))
        if self.updates % c.target_update_interval_updates == 0:
            self.sync_critic_target()
        return metrics

    def _actor_step(self, obs: torch.Tensor, alpha: torch.Tensor) -> dict[str, torch.Tensor]:
        """The policy toward ``min_i Q_i - alpha log pi`` (the critics frozen), then the temperature."""
        new_actions, log_prob = self.actor.sample(obs, self.noise)
        q_new = self.critic(obs, new_actions, frozen=True).amin(0)
        actor_loss = (alpha * log_prob - q_new).mean()
        self.actor_flat.grad.zero_()
        actor_loss.backward()
        self.actor_optimizer.step()
        self.actor_updates += 1
        metrics = {"loss/actor": actor_loss.detach(), "train/entropy": -log_prob.detach().mean(),
                   "train/alpha": alpha.squeeze()}
        if self.tuned:
            # d/d(log alpha) of -log alpha (log pi + target entropy): alpha grows while the
            # policy's entropy is below the target and shrinks above it
            alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
            self.log_alpha.grad.zero_()
            alpha_loss.backward()
            self.alpha_optimizer.step()
            metrics["loss/alpha"] = alpha_loss.detach()
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "actor": self.actor.state_dict(),
                "actor_optimizer": self.actor_optimizer.state_dict(), "log_alpha": self.log_alpha.detach().clone(),
                "alpha_optimizer": self.alpha_optimizer.state_dict(), "actor_updates": self.actor_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.actor.load_state_dict(state["actor"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self.actor_updates = state["actor_updates"]
