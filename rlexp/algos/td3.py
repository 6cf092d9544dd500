"""Twin Delayed DDPG (Fujimoto et al. 2018): a deterministic policy, twin critics whose
minimum makes the target, target policy smoothing with clipped noise, and policy and target
updates delayed to every ``policy_delay`` critic updates; Gaussian exploration noise.

DDPG (Lillicrap et al. 2016, as Fujimoto et al.'s "OurDDPG") is the same learner with one
critic, no smoothing and no delay: ``algo=ddpg`` sets exactly those values.

Reads top to bottom: acting (the policy plus Gaussian noise; the policy alone to evaluate),
then one update: the critics toward ``r + gamma min_i Q_target_i(s', clip(mu_target(s') +
clip(noise)))``; every ``policy_delay`` updates, the actor along ``Q_1(s, mu(s))`` and both
targets by Polyak averaging.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from rlexp.algos.flat_adam import FlatAdam
from rlexp.algos.off_policy import ContinuousOffPolicy, polyak
from rlexp.config import TD3Config
from rlexp.networks import flatten_parameters
from rlexp.networks.continuous import DeterministicActor


class TD3(ContinuousOffPolicy):
    """TD3, and DDPG as its special case (module docstring)."""

    cfg: TD3Config

    def __init__(self, cfg: TD3Config, obs_space, action_space, network, device, seed, num_envs, compute=None,
                 total_steps=None, env_model=None):
        super().__init__(cfg, obs_space, action_space, network, device, seed, num_envs, compute, total_steps, env_model)
        self.actor = DeterministicActor(self.obs_dim, self.action_dim, list(network.hidden_sizes),
                                        network.activation).to(device)
        self.actor_flat = flatten_parameters(self.actor)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.actor_target_flat = flatten_parameters(self.actor_target, with_grad=False)
        self.actor_optimizer = FlatAdam(self.actor_flat, lr=cfg.lr)
        self.actor_updates = 0
        # the fast path: every gradient by hand (networks/continuous.py), autograd's numbers in
        # fewer operations; device.fast_path=off goes through autograd
        self.manual_grad = self.fast_path_allowed and self.critic.manual_grad and self.actor.net.manual_grad

    def _gaussian(self, like: torch.Tensor, std: float) -> torch.Tensor:
        return std * torch.randn(like.shape, generator=self.noise, device=like.device, dtype=like.dtype)

    def _explore(self, obs: torch.Tensor) -> torch.Tensor:
        action = self.actor(obs)
        return (action + self._gaussian(action, self.cfg.exploration_noise)).clamp(-1.0, 1.0)

    def _greedy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs)

    def update(self, obs, actions, rewards, next_obs, terminated) -> dict[str, torch.Tensor]:
        c = self.cfg
        with torch.no_grad():
            next_actions = self.actor_target(next_obs)
            if c.policy_noise > 0:  # target policy smoothing
                smoothing = self._gaussian(next_actions, c.policy_noise).clamp(-c.noise_clip, c.noise_clip)
                next_actions = (next_actions + smoothing).clamp(-1.0, 1.0)
            targets = self.targets(rewards, terminated, self.critic_target(next_obs, next_actions).amin(0))
        step = self.critic_step_by_hand if self.manual_grad else self.critic_step
        q, critic_loss = step(obs, actions, targets)
        metrics = {"loss/critic": critic_loss, "train/q_mean": q.mean()}
        if self.updates % c.policy_delay == 0:
            # the actor along Q_1 (as Fujimoto et al.), the critics frozen
            if self.manual_grad:
                action, inputs = self.actor.forward_saving(obs)
                q_1, critic_inputs = self.critic.forward_saving(obs, action, members=slice(0, 1))
                actor_loss = -q_1.mean()
                grad_action = self.critic.backward(critic_inputs, torch.full_like(q_1, -1.0 / len(obs)),
                                                   members=slice(0, 1), weights=False, action_dim=self.action_dim)
                self.actor.backward_into_grad(inputs, action, grad_action)
            else:
                actor_loss = -self.critic(obs, self.actor(obs), frozen=True)[0].mean()
                self.actor_flat.grad.zero_()
                actor_loss.backward()
                actor_loss = actor_loss.detach()
            self.actor_optimizer.step()
            self.actor_updates += 1
            metrics["loss/actor"] = actor_loss
            with torch.no_grad():
                self.sync_critic_target()
                polyak(self.actor_target_flat, self.actor_flat, c.tau)
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "actor": self.actor.state_dict(), "actor_target": self.actor_target.state_dict(),
                "actor_optimizer": self.actor_optimizer.state_dict(), "actor_updates": self.actor_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.actor.load_state_dict(state["actor"])
        self.actor_target.load_state_dict(state["actor_target"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.actor_updates = state["actor_updates"]
