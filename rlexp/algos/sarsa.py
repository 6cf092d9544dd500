"""Tabular SARSA (Rummery & Niranjan 1994): Q(s,a) <- Q(s,a) + alpha [r + gamma Q(s',a') - Q(s,a)].

Reads top to bottom: the textbook loop "choose A' from S' (epsilon-greedy), update with
Q(S', A'), then take A'". ``observe`` chooses each env's next action A' and updates with
it; the next ``act`` takes exactly those actions. The target follows the behaviour policy
(on-policy), so exploration's risks show up in the values: on CliffWalking SARSA learns
the safe path, Q-learning the cliff edge.
"""

from __future__ import annotations

import numpy as np

from rlexp.algos.tabular import TemporalDifference
from rlexp.config import SarsaConfig


class Sarsa(TemporalDifference):
    """On-policy TD control on a Q-table."""

    cfg: SarsaConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._next_actions: np.ndarray | None = None  # A' per env, chosen in observe(); -1 where an episode ended

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        actions = super().act(obs, step)
        if self._next_actions is not None:
            chosen = self._next_actions >= 0
            actions[chosen] = self._next_actions[chosen]
            self._next_actions = None
        return actions

    def observe(self, obs, actions, rewards, next_obs, terminated, truncated, step, episode_end=None):
        s, a = np.asarray(obs, dtype=np.int64), np.asarray(actions, dtype=np.int64)
        nxt = np.asarray(next_obs, dtype=np.int64)
        if episode_end is None:
            episode_end = np.logical_or(terminated, truncated)
        self.count(s, a, rewards, nxt, terminated)
        # A' from S' with the behaviour policy at the next step (a truncated episode's final
        # state gets one too, for its bootstrap, but the env has moved on to a new episode)
        next_actions = self.epsilon_greedy(nxt, self.epsilon(step + len(s)))
        bootstrap = np.where(terminated, 0.0, self.q[nxt, next_actions])
        targets = np.asarray(rewards, dtype=np.float64) + self.cfg.gamma * bootstrap
        td = self.td_update(s, a, targets, step)
        self._next_actions = np.where(episode_end, -1, next_actions)
        return {"loss/td_abs": td}

    def state_dict(self):
        state = super().state_dict()
        state["next_actions"] = None if self._next_actions is None else self._next_actions.tolist()
        return state

    def load_state_dict(self, state) -> None:
        super().load_state_dict(state)
        pending = state.get("next_actions")
        self._next_actions = None if pending is None else np.asarray(pending, dtype=np.int64)
