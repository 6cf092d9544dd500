"""What every policy-gradient learner shares (REINFORCE, A2C, PPO): an actor-critic network
with a policy head for discrete or continuous actions, its parameters in one flat tensor,
sampled acting, mode-of-the-policy evaluation, and one clipped optimizer step.

``device.amp`` runs the network passes under bfloat16 autocast (the log-probs, values and
losses are computed in float32); ``device.compile`` runs them through ``torch.compile``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlexp.algos.base import Algorithm
from rlexp.algos.common import clip_grad_norm_
from rlexp.networks import build_actor_critic, flatten_parameters
from rlexp.schedules import linear_schedule


class ActorCriticAlgorithm(Algorithm):
    """Builds ``self.net`` and ``self.flat_params``; a subclass builds ``self.optimizer`` over
    ``[self.flat_params]`` and learns with :meth:`optimizer_step`."""

    DEVICE_SETTINGS = ("amp", "compile")

    def __init__(self, cfg, obs_space, action_space, network, device, seed, num_envs, compute=None,
                 total_steps=None, env_model=None):
        super().__init__(cfg, obs_space, action_space, network, device, seed, num_envs, compute, total_steps, env_model)
        self.net = build_actor_critic(network, obs_space, action_space).to(device)
        # one flat parameter: the optimizer and the clip run a few kernels instead of a few per layer
        self.flat_params = flatten_parameters(self.net)
        self.net_fn = self.compiled(self.net)
        self.optimizer: Any = None  # the subclass's over self.flat_params: FlatAdam, or a torch optimizer
        self.updates = 0  # gradient updates made

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(policy head input, value) for a batch of observations, in float32."""
        if not self.compute.amp:
            return self.net_fn(obs)
        with self.autocast():
            out, value = self.net_fn(obs)
        return out.float(), value.float()

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) for a batch of observations (the critic alone), in float32."""
        with self.autocast():
            return self.net.value(obs).float()

    def progress_left(self, step: int) -> float:
        """1 at the start of the run, 0 at its end (for annealing)."""
        return linear_schedule(1.0, 0.0, self.total_steps, step) if self.total_steps else 1.0

    @torch.no_grad()
    def sample(self, obs: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
        """Sample the policy: (obs tensor, raw action, its log-prob, the value, the env's action)."""
        obs_t = torch.as_tensor(obs, device=self.device)
        out, value = self.forward(obs_t)
        action, logprob = self.net.head.sample(out)
        return obs_t, action, logprob, value, self.net.head.env_action(action).cpu().numpy()

    @torch.no_grad()
    def predict(self, obs: np.ndarray) -> np.ndarray:
        out, _ = self.forward(torch.as_tensor(obs, device=self.device))
        return self.net.head.env_action(self.net.head.mode(out)).cpu().numpy()  # the policy's mode

    def optimizer_step(self, loss: torch.Tensor) -> None:
        """Backward, clip the gradient norm to ``algo.max_grad_norm`` (when set), step."""
        self.flat_params.grad.zero_()  # the layers' .grad are views of it: never set it to None
        loss.backward()
        self.apply_gradient()

    def apply_gradient(self) -> None:
        """Clip the gradient in ``flat_params.grad`` to ``algo.max_grad_norm`` (when set), step."""
        if self.cfg.max_grad_norm is not None:
            clip_grad_norm_(self.flat_params.grad, self.cfg.max_grad_norm)
        self.optimizer.step()
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = state["updates"]
