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
        # the fast path: every gradient by hand (networks/continuous.py), autograd's numbers in
        # fewer operations; device.fast_path=off goes through autograd
        self.manual_grad = self.fast_path_allowed and self.critic.manual_grad and self.actor.trunk.manual_grad

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()

    def _explore(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor.sample(obs, self.noise)[0]

    def _greedy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor.mode(obs)

    def update(self, obs, actions, rewards, next_obs, terminated) -> dict[str, torch.Tensor]:
        c, batch = self.cfg, len(obs)
        actor_due = (self.updates + 1) % c.actor_update_interval_updates == 0
        # one draw for the update's two policy samples (the next actions, then the actor's), so
        # that both gradient paths use the same numbers
        noise = torch.randn((2 * batch if actor_due else batch, self.action_dim), generator=self.noise,
                            device=obs.device)
        if self.manual_grad:
            metrics = self._update_by_hand(obs, actions, rewards, next_obs, terminated, noise, actor_due)
        else:
            metrics = self._update_by_autograd(obs, actions, rewards, next_obs, terminated, noise, actor_due)
        if self.updates % c.target_update_interval_updates == 0:
            self.sync_critic_target()
        return metrics

    def _targets(self, rewards, next_obs, terminated, next_actions, next_log_prob, alpha) -> torch.Tensor:
        with torch.no_grad():
            next_q = self.critic_target(next_obs, next_actions).amin(0) - alpha * next_log_prob
            return self.targets(rewards, terminated, next_q)

    def _update_by_autograd(self, obs, actions, rewards, next_obs, terminated, noise, actor_due):
        alpha, batch = self.alpha, len(obs)
        with torch.no_grad():
            next_actions, next_log_prob = self.actor.sample(next_obs, noise=noise[:batch])
        targets = self._targets(rewards, next_obs, terminated, next_actions, next_log_prob, alpha)
        q, critic_loss = self.critic_step(obs, actions, targets)
        metrics = {"loss/critic": critic_loss, "train/q_mean": q.mean()}
        if actor_due:
            # the policy toward min_i Q_i - alpha log pi (the critics frozen)
            new_actions, log_prob = self.actor.sample(obs, noise=noise[batch:])
            q_new = self.critic(obs, new_actions, frozen=True).amin(0)
            actor_loss = (alpha * log_prob - q_new).mean()
            self.actor_flat.grad.zero_()
            actor_loss.backward()
            metrics.update(self._after_actor_gradient(actor_loss.detach(), log_prob.detach(), alpha))
        return metrics

    def _update_by_hand(self, obs, actions, rewards, next_obs, terminated, noise, actor_due):
        """:meth:`_update_by_autograd` with hand-written gradients; the policy runs once over
        the next observations and (when the actor learns) the observations together."""
        alpha, batch = self.alpha, len(obs)
        both = torch.cat([next_obs, obs]) if actor_due else next_obs
        sampled, sampled_log_prob, saved = self.actor.sample_saving(both, noise)
        targets = self._targets(rewards, next_obs, terminated, sampled[:batch], sampled_log_prob[:batch], alpha)
        q, critic_loss = self.critic_step_by_hand(obs, actions, targets)
        metrics = {"loss/critic": critic_loss, "train/q_mean": q.mean()}
        if actor_due:
            log_prob = sampled_log_prob[batch:]
            q_new, inputs = self.critic.forward_saving(obs, sampled[batch:])
            q_min = q_new.amin(0)
            actor_loss = (alpha * log_prob - q_min).mean()
            grad_action = self.critic.backward_of_min(inputs, q_new, -1.0 / batch, self.action_dim)
            self.actor.backward_into_grad(saved, slice(batch, None), grad_action, (alpha / batch).expand(batch))
            metrics.update(self._after_actor_gradient(actor_loss, log_prob, alpha))
        return metrics

    def _after_actor_gradient(self, actor_loss, log_prob, alpha) -> dict[str, torch.Tensor]:
        """The actor's step along the gradient in its ``.grad``, then the temperature's."""
        self.actor_optimizer.step()
        self.actor_updates += 1
        metrics = {"loss/actor": actor_loss, "train/entropy": -log_prob.mean(), "train/alpha": alpha.squeeze()}
        if self.tuned:
            # alpha_loss = -log alpha (log pi + target entropy), whose gradient in log alpha makes
            # alpha grow while the policy's entropy is below the target and shrink above it
            shortfall = log_prob + self.target_entropy
            metrics["loss/alpha"] = -(self.log_alpha.detach() * shortfall).mean()
            torch.mean(-shortfall, 0, keepdim=True, out=self.log_alpha.grad)
            self.alpha_optimizer.step()
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
