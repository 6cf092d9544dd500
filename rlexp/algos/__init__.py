"""The algorithm registry: one line per algorithm."""

from __future__ import annotations

from rlexp.algos.a2c import A2C
from rlexp.algos.base import Algorithm
from rlexp.algos.dqn import DQN
from rlexp.algos.ppo import PPO
from rlexp.algos.q_learning import QLearning
from rlexp.algos.reinforce import Reinforce
from rlexp.algos.sarsa import Sarsa
from rlexp.algos.value_iteration import ValueIteration

ALGOS: dict[str, type[Algorithm]] = {
    "dqn": DQN,
    "ppo": PPO,
    "a2c": A2C,
    "reinforce": Reinforce,
    "q_learning": QLearning,
    "sarsa": Sarsa,
    "value_iteration": ValueIteration,
}

__all__ = ["A2C", "ALGOS", "Algorithm", "DQN", "PPO", "QLearning", "Reinforce", "Sarsa", "ValueIteration"]
