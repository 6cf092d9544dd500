"""Networks of the off-policy continuous-control learners (SAC, TD3, DDPG): a critic ensemble
computed as one batched network, a tanh-squashed Gaussian actor and a deterministic actor.

Actions here are normalized to [-1, 1] in every dimension; the learner maps them to the
env's bounds.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rlexp.networks import _ACTIVATION_FNS, MLP

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # the Gaussian actor's log std range (Haarnoja et al.'s softlearning, SB3)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class CriticEnsemble(nn.Module):
    """``members`` Q networks ``Q_i(obs, action)`` of the same shape, computed together: each
    layer is one batched matrix product over the members (``torch.baddbmm``) instead of one
    product per member. Each member's weights are initialized as ``nn.Linear`` initializes
    a layer of its width, independently."""

    def __init__(self, members: int, obs_dim: int, action_dim: int, hidden_sizes: list[int], activation: str = "relu"):
        super().__init__()
        widths = [obs_dim + action_dim, *hidden_sizes, 1]
        self.members = members
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            bound = 1 / math.sqrt(fan_in)  # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            self.weights.append(nn.Parameter(torch.empty(members, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(members, 1, fan_out).uniform_(-bound, bound)))
        self._act = _ACTIVATION_FNS[activation]

    def forward(self, obs: torch.Tensor, action: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """Every member's Q of each (observation, action) row, ``(members, batch)``; ``frozen``:
        the weights take no gradient (the actor's loss differentiates only through the action)."""
        x = torch.cat([obs.flatten(1), action], dim=1).expand(self.members, -1, -1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if frozen:
                w, b = w.detach(), b.detach()
            if i < last:
                x = self._act(torch.baddbmm(b, x, w))
            else:  # one output: a weighted sum (a batched product with one column is several times slower on CPU)
                x = (x * w.transpose(1, 2)).sum(-1) + b[:, :, 0]
        return x


class SquashedGaussianActor(nn.Module):
    """SAC's policy (Haarnoja et al. 2018): a Gaussian whose mean and log std (clamped to
    [-20, 2]) an MLP gives per observation, its draw squashed by tanh into [-1, 1], with the
    log-probability corrected for the squashing."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: list[int], activation: str = "relu"):
        super().__init__()
        self.trunk = MLP(obs_dim, None, hidden_sizes, activation)
        self.out = nn.Linear(self.trunk.out_features, 2 * action_dim)

    def _mean_log_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.out(self.trunk(obs)).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(action in [-1, 1], its log-probability ``(batch,)``), reparameterized: the gradient
        flows through the draw."""
        mean, log_std = self._mean_log_std(obs)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        u = mean + log_std.exp() * noise
        log_prob = (-0.5 * noise.square() - log_std - _LOG_SQRT_2PI).sum(-1)
        # log |d tanh(u) / du| = log(1 - tanh(u)^2), written stably as 2 (log 2 - u - softplus(-2u))
        log_prob = log_prob - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
        return torch.tanh(u), log_prob

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """The evaluation action: tanh of the mean."""
        return torch.tanh(self._mean_log_std(obs)[0])


class DeterministicActor(nn.Module):
    """TD3's and DDPG's policy: an MLP whose tanh output is the action in [-1, 1]."""

    def __init__(self, obs_dim: int, action_dim: int, hidden_sizes: list[int], activation: str = "relu"):
        super().__init__()
        self.net = MLP(obs_dim, action_dim, hidden_sizes, activation)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs))
