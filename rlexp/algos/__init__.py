"""The algorithm registry: one line per algorithm."""

from __future__ import annotations

from rlexp.algos.base import Algorithm
from rlexp.algos.dqn import DQN

ALGOS: dict[str, type[Algorithm]] = {
    "dqn": DQN,
}

__all__ = ["ALGOS", "Algorithm", "DQN"]
