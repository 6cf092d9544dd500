"""AlphaZero's policy-value network (Silver et al. 2017, 2018), sized from the game.

A residual tower for board-shaped observations (C, H, W): a 3x3 convolution, ``blocks``
residual blocks (two 3x3 convolutions with batch norm and a skip), then a policy head
(1x1 convolution, a linear layer to one logit per action) and a value head (1x1
convolution, a hidden layer, tanh). Flat observations get an MLP trunk with the same two
heads. The value is from the point of view of the player to move.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rlexp.config import NetworkConfig
from rlexp.errors import ConfigError
from rlexp.networks import MLP


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(y)))


class ResNetPolicyValue(nn.Module):
    """The AlphaZero tower and heads for (C, H, W) observations."""

    def __init__(self, obs_shape: tuple[int, int, int], num_actions: int, blocks: int, channels: int,
                 value_hidden: int):
        super().__init__()
        c, h, w = obs_shape
        self.stem = nn.Sequential(nn.Conv2d(c, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU())
        self.tower = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.policy_conv = nn.Sequential(nn.Conv2d(channels, 2, 1, bias=False), nn.BatchNorm2d(2), nn.ReLU())
        self.policy_fc = nn.Linear(2 * h * w, num_actions)
        self.value_conv = nn.Sequential(nn.Conv2d(channels, 1, 1, bias=False), nn.BatchNorm2d(1), nn.ReLU())
        self.value_fc = nn.Sequential(nn.Linear(h * w, value_hidden), nn.ReLU(), nn.Linear(value_hidden, 1))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.tower(self.stem(obs))
        logits = self.policy_fc(self.policy_conv(x).flatten(1))
        value = torch.tanh(self.value_fc(self.value_conv(x).flatten(1))).squeeze(1)
        return logits, value


class MLPPolicyValue(nn.Module):
    """An MLP trunk and the two heads, for flat observations (or small boards)."""

    def __init__(self, in_features: int, num_actions: int, hidden_sizes: list[int], activation: str):
        super().__init__()
        self.trunk = MLP(in_features, None, hidden_sizes, activation)
        self.policy = nn.Linear(self.trunk.out_features, num_actions)
        self.value = nn.Linear(self.trunk.out_features, 1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.trunk(obs)
        return self.policy(x), torch.tanh(self.value(x)).squeeze(1)


def build_policy_value(cfg: NetworkConfig, obs_shape: tuple[int, ...], num_actions: int) -> nn.Module:
    """``network.name``: ``resnet`` (board-shaped observations), ``mlp``, or ``auto`` (the
    residual tower when the observation is (C, H, W), else the MLP).

    Raises:
        ConfigError: an architecture this game's observations cannot take.
    """
    name = ("resnet" if len(obs_shape) == 3 else "mlp") if cfg.name == "auto" else cfg.name
    if name == "nature_cnn":
        raise ConfigError("network=nature_cnn is for Atari frames; board games take network=auto, resnet or mlp")
    if name == "resnet":
        if len(obs_shape) != 3:
            raise ConfigError(f"network=resnet needs a board-shaped (C, H, W) observation, this game's is {obs_shape}; "
                              "use network=mlp")
        return ResNetPolicyValue(obs_shape, num_actions, cfg.resnet_blocks, cfg.resnet_channels, cfg.resnet_value_hidden)
    in_features = 1
    for n in obs_shape:
        in_features *= n
    return MLPPolicyValue(in_features, num_actions, list(cfg.hidden_sizes), cfg.activation)
