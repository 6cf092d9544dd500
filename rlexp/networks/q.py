"""The Q-network of the DQN family's parts: dueling heads, noisy layers, value distributions.

:class:`QNetwork` is a trunk (the Nature CNN's convolutions for frames, the MLP's hidden
layers but the last for vectors), one fully connected hidden layer, and one output layer, or
two with ``dueling`` (Wang et al. 2016): ``Q = V + A - mean_a A``. Without the parts it is
the plain DQN network layer for layer. The two streams share the hidden layer, as in
Dopamine's full Rainbow network, which the DER preset reproduces (Wang et al. give each
stream a hidden layer of its own, twice the weights). With ``noisy`` every fully connected
layer is a :class:`NoisyLinear` (Fortunato et al. 2018; Hessel et al. 2018 keep the
convolutions deterministic). With ``atoms > 1`` each action gets ``atoms`` outputs: C51's
logits over a fixed support (Bellemare et al. 2017), or QR-DQN's quantiles (Dabney et al.
2018); the dueling combination then applies per atom, as in Rainbow.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU}


class NoisyLinear(nn.Module):
    """A linear layer with factorized Gaussian noise on its weights (Fortunato et al. 2018, section 3.2).

    ``y = (mu_w + sigma_w * f(e_out) f(e_in)^T) x + mu_b + sigma_b * f(e_out)`` with
    ``f(e) = sign(e) sqrt(|e|)`` and ``e`` standard normal, drawn by :meth:`sample_noise`
    from the learner's generator (so the noise is part of the run's random state). In
    ``eval()`` mode the layer is its mean: the evaluation policy has no noise.
    """

    def __init__(self, in_features: int, out_features: int, std_init: float = 0.5):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        # the paper's initialization: mu ~ U[-1/sqrt(p), 1/sqrt(p)], sigma = sigma_0 / sqrt(p)
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((out_features, in_features), std_init * bound))
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.bias_sigma = nn.Parameter(torch.full((out_features,), std_init * bound))
        self.register_buffer("noise_in", torch.zeros(in_features), persistent=False)
        self.register_buffer("noise_out", torch.zeros(out_features), persistent=False)

    @staticmethod
    def _scaled(noise: torch.Tensor) -> torch.Tensor:
        return noise.sign() * noise.abs().sqrt()

    @torch.no_grad()
    def sample_noise(self, generator: torch.Generator) -> None:
        """Draw new noise (used by every forward until the next draw)."""
        device = self.noise_in.device
        self.noise_in.copy_(self._scaled(torch.randn(self.in_features, generator=generator, device=device)))
        self.noise_out.copy_(self._scaled(torch.randn(self.out_features, generator=generator, device=device)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.linear(x, self.weight_mu, self.bias_mu)
        # (sigma * outer(e_out, e_in)) x = e_out * (sigma (e_in * x)): a second product instead of
        # forming the noisy weight, which reads and writes three weight-sized arrays (memory-bound:
        # 4x slower for one observation, no faster for a batch of 32, on a 3136 x 512 layer)
        mean = F.linear(x, self.weight_mu, self.bias_mu + self.bias_sigma * self.noise_out)
        return mean + F.linear(x * self.noise_in, self.weight_sigma) * self.noise_out


class QNetwork(nn.Module):
    """Action values (or their distributions) from observations; see the module's doc.

    Args:
        trunk: observations -> features (N, feature_size).
        feature_size: the trunk's output width.
        hidden_size: the hidden layer's width (None: the outputs read the trunk directly).
        n_actions: discrete actions.
        atoms: outputs per action (1: Q-values; C51's atoms or QR-DQN's quantiles).
        dueling: a value and an advantage output instead of one.
        noisy: noisy fully connected layers (standard deviation ``noisy_std_init / sqrt(fan_in)`` at first).
        activation: the hidden layer's activation.
    """

    def __init__(self, trunk: nn.Module, feature_size: int, hidden_size: int | None, n_actions: int, atoms: int = 1,
                 dueling: bool = False, noisy: bool = False, noisy_std_init: float = 0.5, activation: str = "relu"):
        super().__init__()
        self.trunk = trunk
        self.n_actions, self.atoms = n_actions, atoms

        def layer(a: int, b: int) -> nn.Module:
            return NoisyLinear(a, b, noisy_std_init) if noisy else nn.Linear(a, b)

        if hidden_size is None:
            self.hidden = nn.Identity()
        else:
            self.hidden = nn.Sequential(layer(feature_size, hidden_size), _ACTIVATIONS[activation]())
            feature_size = hidden_size
        self.advantage = layer(feature_size, n_actions * atoms)
        self.value = layer(feature_size, atoms) if dueling else None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(N, n_actions) values, or (N, n_actions, atoms) with atoms > 1."""
        x = self.hidden(self.trunk(obs))
        out = self.advantage(x).view(-1, self.n_actions, self.atoms)
        if self.value is not None:
            out = self.value(x).view(-1, 1, self.atoms) + out - out.mean(dim=1, keepdim=True)
        return out.squeeze(-1) if self.atoms == 1 else out

    def sample_noise(self, generator: torch.Generator) -> None:
        """New noise in every noisy layer (nothing without noisy layers)."""
        for module in self.modules():
            if isinstance(module, NoisyLinear):
                module.sample_noise(generator)


class FrameTrunk(nn.Module):
    """The Nature CNN's convolutions on uint8 frames (scaled on the device), flattened."""

    def __init__(self, obs_shape: tuple[int, ...]):
        super().__init__()
        from rlexp.networks import NatureCNN

        self.convs = NatureCNN(obs_shape, 1).convs
        with torch.no_grad():
            self.out_features = int(self.convs(torch.zeros(1, *obs_shape)).shape[1])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        from rlexp.networks import scale_frames

        return self.convs(scale_frames(obs))


def q_network_trunk(obs_shape: tuple[int, ...], cnn: bool, hidden_sizes: list[int], activation: str,
                    cnn_hidden_size: int) -> tuple[nn.Module, int, int | None]:
    """(trunk, its output width, the hidden layer's width), laid out as the plain Q-network:
    the Nature CNN's convolutions then its fully connected layer, or the MLP's hidden layers
    with the last one as the hidden layer."""
    from rlexp.networks import MLP

    if cnn:
        trunk = FrameTrunk(obs_shape)
        return trunk, trunk.out_features, cnn_hidden_size
    in_features = int(np.prod(obs_shape))
    if not hidden_sizes:
        return nn.Flatten(), in_features, None
    if len(hidden_sizes) == 1:
        return nn.Flatten(), in_features, hidden_sizes[0]
    return MLP(in_features, None, list(hidden_sizes[:-1]), activation), hidden_sizes[-2], hidden_sizes[-1]
