"""Policy heads: the action distribution on top of an actor's outputs.

A head turns the actor's raw outputs into actions, log-probabilities and entropies without
building a ``torch.distributions`` object per call (that costs more than the arithmetic on
the small batches of an env step). ``tests/networks/test_heads.py`` checks every formula
against ``torch.distributions``.

Learners store the *raw* action a head samples (an index, or the unbounded Gaussian draw)
and compute log-probs from it; ``env_action`` maps it to what the env receives (the
Gaussian draw clipped, or tanh-squashed, to the action bounds).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlexp.errors import ConfigError

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class CategoricalHead(nn.Module):
    """Discrete actions: the actor's outputs are logits, one per action."""

    action_dtype = torch.int64
    action_shape: tuple[int, ...] = ()

    def __init__(self, n_actions: int):
        super().__init__()
        self.num_outputs = n_actions

    def sample(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(action (N,), log-prob (N,)) drawn from the policy."""
        log_probs = torch.log_softmax(logits, dim=-1)
        action = torch.multinomial(log_probs.exp(), 1).squeeze(-1)
        return action, log_probs.gather(-1, action.unsqueeze(-1)).squeeze(-1)

    def log_prob_entropy(self, logits: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log pi(action), entropy), each (N,)."""
        log_probs = torch.log_softmax(logits, dim=-1)
        entropy = -(log_probs.exp() * log_probs).sum(dim=-1)
        return log_probs.gather(-1, action.unsqueeze(-1)).squeeze(-1), entropy

    def mode(self, logits: torch.Tensor) -> torch.Tensor:
        """The most likely action (the evaluation policy)."""
        return logits.argmax(dim=-1)

    def env_action(self, action: torch.Tensor) -> torch.Tensor:
        return action


class GaussianHead(nn.Module):
    """Continuous actions: a diagonal Gaussian with a state-independent, learned log std.

    The actor outputs the mean. ``bound="clip"`` (as CleanRL and Stable-Baselines3's PPO)
    learns the unbounded Gaussian and clips its draw to the action bounds for the env;
    ``bound="squash"`` passes the draw through tanh, rescaled to the bounds, and corrects
    the log-prob for the change of variables (as SAC). The squashed policy's entropy has no
    closed form; the entropy bonus uses the underlying Gaussian's.
    """

    action_dtype = torch.float32

    def __init__(self, action_space: gym.spaces.Box, log_std_init: float, bound: str):
        super().__init__()
        dims = int(np.prod(action_space.shape))
        self.num_outputs = dims
        self.action_shape = (dims,)
        self.env_shape = tuple(action_space.shape)
        self.bound = bound
        self.log_std = nn.Parameter(torch.full((dims,), float(log_std_init)))
        low = torch.as_tensor(action_space.low, dtype=torch.float32).flatten()
        high = torch.as_tensor(action_space.high, dtype=torch.float32).flatten()
        self.register_buffer("low", low)
        self.register_buffer("high", high)
        # tanh squashing: action = center + half_range * tanh(u)
        self.register_buffer("center", (high + low) / 2)
        self.register_buffer("half_range", (high - low) / 2)

    def sample(self, mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw action (N, D), log-prob (N,)): the unbounded draw u ~ N(mean, std)."""
        action = mean + self.log_std.exp() * torch.randn_like(mean)
        return action, self._log_prob(mean, action)

    def _log_prob(self, mean: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        z = (action - mean) * torch.exp(-self.log_std)
        log_prob = (-0.5 * z.square() - self.log_std - _LOG_SQRT_2PI).sum(dim=-1)
        if self.bound == "squash":
            # log |d/du (center + half_range * tanh u)| = log half_range + log(1 - tanh(u)^2),
            # the latter written stably as 2 (log 2 - u - softplus(-2u))
            log_det = 2 * (math.log(2) - action - F.softplus(-2 * action)) + self.half_range.log()
            log_prob = log_prob - log_det.sum(dim=-1)
        return log_prob

    def log_prob_entropy(self, mean: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log pi(action), entropy), each (N,); ``action`` is the raw draw from :meth:`sample`."""
        entropy = (0.5 + _LOG_SQRT_2PI + self.log_std).sum().expand(mean.shape[0])
        return self._log_prob(mean, action), entropy

    def mode(self, mean: torch.Tensor) -> torch.Tensor:
        """The Gaussian's mean (the evaluation policy, bounded by :meth:`env_action`)."""
        return mean

    def env_action(self, action: torch.Tensor) -> torch.Tensor:
        """The raw draw mapped into the action bounds, in the env's action shape."""
        if self.bound == "squash":
            bounded = self.center + self.half_range * torch.tanh(action)
        else:
            bounded = torch.maximum(torch.minimum(action, self.high), self.low)
        return bounded.reshape(-1, *self.env_shape)


PolicyHead = CategoricalHead | GaussianHead


def policy_head(action_space: gym.Space, log_std_init: float, bound: str) -> PolicyHead:
    """The head for ``action_space``: Categorical for Discrete, Gaussian for a bounded Box.

    Raises:
        ConfigError: an action space no head handles (e.g. MultiDiscrete, unbounded Box).
    """
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalHead(int(action_space.n))
    if isinstance(action_space, gym.spaces.Box):
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise ConfigError(f"continuous actions need finite bounds to clip or squash to, the env has {action_space}")
        return GaussianHead(action_space, log_std_init, bound)
    raise ConfigError(
        f"the actor-critic supports Discrete and Box action spaces, the env has {type(action_space).__name__}"
    )
