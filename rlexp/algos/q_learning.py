"""Tabular Q-learning (Watkins 1989): Q(s,a) <- Q(s,a) + alpha [r + gamma max_a' Q(s',a') - Q(s,a)].

Reads top to bottom: act epsilon-greedy on the Q-table (epsilon decays linearly), then
move Q(s, a) toward the one-step target of the greedy policy, whatever the behaviour did
next (off-policy). A terminal state is not bootstrapped; a time-limit truncation is, from
its real final state.
"""

from __future__ import annotations

import numpy as np

from rlexp.algos.tabular import TemporalDifference
from rlexp.config import QLearningConfig


class QLearning(TemporalDifference):
    """Off-policy TD control on a Q-table."""

    cfg: QLearningConfig

    def observe(self, obs, actions, rewards, next_obs, terminated, truncated, step, episode_end=None):
        s, a = np.asarray(obs, dtype=np.int64), np.asarray(actions, dtype=np.int64)
        nxt = np.asarray(next_obs, dtype=np.int64)
        self.count(s, a, rewards, nxt, terminated)
        bootstrap = np.where(terminated, 0.0, self.q[nxt].max(axis=1))
        targets = np.asarray(rewards, dtype=np.float64) + self.cfg.gamma * bootstrap
        return {"loss/td_abs": self.td_update(s, a, targets, step)}
