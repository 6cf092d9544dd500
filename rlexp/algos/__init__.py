"""The learning algorithms, one file each. The registry (name -> schema and class) is
``rlexp.config.ALGOS``; this package only holds their code and what they share
(``base.Algorithm``, the contract the gym-stepping trainer drives; ``common``; ``actor_critic``)."""

from __future__ import annotations

from rlexp.algos.a2c import A2C
from rlexp.algos.base import Algorithm
from rlexp.algos.dqn import DQN
from rlexp.algos.ppo import PPO
from rlexp.algos.q_learning import QLearning
from rlexp.algos.reinforce import Reinforce
from rlexp.algos.sarsa import Sarsa
from rlexp.algos.value_iteration import ValueIteration

__all__ = ["A2C", "Algorithm", "DQN", "PPO", "QLearning", "Reinforce", "Sarsa", "ValueIteration"]
