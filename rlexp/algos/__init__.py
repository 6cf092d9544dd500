"""The algorithm registry: one line per algorithm."""

from __future__ import annotations

from rlexp.algos.a2c import A2C
from rlexp.algos.base import Algorithm
from rlexp.algos.dqn import DQN
from rlexp.algos.ppo import PPO
from rlexp.algos.reinforce import Reinforce

ALGOS: dict[str, type[Algorithm]] = {
    "dqn": DQN,
    "ppo": PPO,
    "a2c": A2C,
    "reinforce": Reinforce,
}

__all__ = ["A2C", "ALGOS", "Algorithm", "DQN", "PPO", "Reinforce"]
