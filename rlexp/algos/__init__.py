"""The algorithm registry: one line per algorithm."""

from __future__ import annotations

from rlexp.algos.base import Algorithm
from rlexp.algos.dqn import DQN
from rlexp.algos.ppo import PPO

ALGOS: dict[str, type[Algorithm]] = {
    "dqn": DQN,
    "ppo": PPO,
}

__all__ = ["ALGOS", "Algorithm", "DQN", "PPO"]
