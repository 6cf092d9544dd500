"""Function approximators, sized from the env's spaces at build time (never from YAML)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlexp.config import ConfigError, NetworkConfig

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


class MLP(nn.Module):
    """Flatten the observation, then fully connected layers."""

    def __init__(self, in_features: int, out_features: int, hidden_sizes: list[int], activation: str = "relu"):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), _ACTIVATIONS[activation]()]
            width = hidden
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


def build_q_network(cfg: NetworkConfig, obs_space: gym.Space, action_space: gym.Space) -> nn.Module:
    """A Q-network with one output per discrete action.

    Raises:
        ConfigError: the spaces do not fit a Q-network.
    """
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(
            f"a Q-network needs a discrete action space, the env has {type(action_space).__name__}; "
            "use a discrete-action env"
        )
    if not isinstance(obs_space, gym.spaces.Box):
        raise ConfigError(f"network={cfg.name} needs a Box observation space, the env has {type(obs_space).__name__}")
    in_features = int(np.prod(obs_space.shape))
    return MLP(in_features, int(action_space.n), list(cfg.hidden_sizes), cfg.activation)


def flatten_parameters(module: nn.Module) -> nn.Parameter:
    """Re-home a module's parameters (and their gradients) as views of one flat tensor.

    Returns the flat parameter, whose ``.grad`` holds every gradient. An optimizer given
    ``[flat]`` then updates the whole network in a handful of kernels instead of a few per
    layer, which is most of an update's cost for the small networks of classic control.
    Backward accumulates into the views, so zero ``flat.grad`` (do not set it to None)
    before each backward.
    """
    params = list(module.parameters())
    total = sum(p.numel() for p in params)
    device, dtype = params[0].device, params[0].dtype
    flat = torch.empty(total, device=device, dtype=dtype)
    grad = torch.zeros(total, device=device, dtype=dtype)
    offset = 0
    for p in params:
        n = p.numel()
        flat[offset : offset + n].copy_(p.detach().reshape(-1))
        p.data = flat[offset : offset + n].view_as(p)
        p.grad = grad[offset : offset + n].view_as(p)
        offset += n
    flat_param = nn.Parameter(flat)
    flat_param.grad = grad
    return flat_param
