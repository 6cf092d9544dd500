"""What the tabular methods share: a Q-table over discrete states, epsilon-greedy acting,
the visit counts that make up the learned model, and value iteration on a model.

Q-learning (``q_learning.py``), SARSA (``sarsa.py``) and value iteration
(``value_iteration.py``) build on it; the training loop treats them like any algorithm.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlexp.algos.base import Algorithm
from rlexp.algos.common import epsilon_greedy
from rlexp.errors import ConfigError
from rlexp.schedules import linear_schedule

TABULAR_ENVS = "env=maze, maze_large, frozenlake, cliffwalking or taxi"


def model_arrays(env_model: dict, n_states: int, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """A toy-text model ``P[s][a] = [(p, s', r, terminated), ...]`` as dense arrays.

    Returns:
        (expected reward R (S, A), continuation C (S, A, S)): C holds the probability of
        reaching s' without the episode ending, so Q = R + gamma * C @ V.
    """
    rewards = np.zeros((n_states, n_actions))
    continuation = np.zeros((n_states, n_actions, n_states))
    for s in range(n_states):
        for a in range(n_actions):
            for p, nxt, r, terminated in env_model[s][a]:
                rewards[s, a] += p * r
                if not terminated:
                    continuation[s, a, int(nxt)] += p
    return rewards, continuation


def value_iteration(
    rewards: np.ndarray, continuation: np.ndarray, gamma: float, theta: float, max_iterations: int
) -> tuple[np.ndarray, int]:
    """Q* of a model by value iteration: V <- max_a [R + gamma C V] until no value moves by > theta.

    Returns:
        (Q (S, A), sweeps made).
    """
    values = np.zeros(rewards.shape[0])
    q = rewards.copy()
    for sweep in range(1, max_iterations + 1):
        q = rewards + gamma * continuation @ values
        new = q.max(axis=1)
        delta = np.abs(new - values).max()
        values = new
        if delta <= theta:
            return q, sweep
    return q, max_iterations


class Tabular(Algorithm):
    """A Q-table (S, A), epsilon-greedy acting with random tie-breaks, visit counts.

    Counts: ``visits[s, a]``, ``transitions[s, a, s']``, the share of those that ended the
    episode (``ended``) and the reward sums: the learned model, and what its picture shows.
    """

    def __init__(self, cfg, obs_space, action_space, network, device, seed, num_envs, compute=None,
                 total_steps=None, env_model=None):
        super().__init__(cfg, obs_space, action_space, network, device, seed, num_envs, compute, total_steps, env_model)
        for what, space in (("states (observations)", obs_space), ("actions", action_space)):
            if not isinstance(space, gym.spaces.Discrete):
                raise ConfigError(
                    f"algo={cfg.name} needs discrete {what}, the env has {space}; use {TABULAR_ENVS}"
                )
        self.n_states, self.n_actions = int(obs_space.n), int(action_space.n)
        self.q = np.zeros((self.n_states, self.n_actions))
        self.visits = np.zeros((self.n_states, self.n_actions), dtype=np.int64)
        self.transitions = np.zeros((self.n_states, self.n_actions, self.n_states), dtype=np.int32)
        self.ended = np.zeros_like(self.transitions)  # the transitions that ended the episode there
        self.reward_sum = np.zeros((self.n_states, self.n_actions))
        self.eval_rng = np.random.default_rng([seed, 1])

    # ------------------------------------------------------------------ acting

    def epsilon(self, step: int) -> float:
        c = self.cfg
        return linear_schedule(c.epsilon_start, c.epsilon_end, c.epsilon_decay_steps, step)

    def greedy(self, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """argmax_a Q(s, a), ties broken at random (all-zero rows explore instead of always going up)."""
        rows = self.q[states]
        best = rows == rows.max(axis=1, keepdims=True)
        noise = rng.random(best.shape)
        return np.argmax(np.where(best, noise + 1.0, noise - 1.0), axis=1)

    def epsilon_greedy(self, states: np.ndarray, epsilon: float) -> np.ndarray:
        return epsilon_greedy(lambda: self.greedy(states, self.rng), self.n_actions, len(states), epsilon, self.rng)

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        return self.epsilon_greedy(np.asarray(obs, dtype=np.int64), self.epsilon(step))

    def predict(self, obs: np.ndarray) -> np.ndarray:
        # its own RNG for the tie-breaks: evaluating must not change the training run's random stream
        return self.greedy(np.asarray(obs, dtype=np.int64), self.eval_rng)

    def schedules(self, step: int) -> dict[str, float]:
        return {"train/epsilon": self.epsilon(step)}

    # ------------------------------------------------------------------ counting

    def count(self, obs, actions, rewards, next_obs, terminated) -> None:
        """Fold one vector step into the counts (the learned model and the visit picture)."""
        s = np.asarray(obs, dtype=np.int64)
        a = np.asarray(actions, dtype=np.int64)
        nxt = np.asarray(next_obs, dtype=np.int64)
        np.add.at(self.visits, (s, a), 1)
        np.add.at(self.transitions, (s, a, nxt), 1)
        np.add.at(self.ended, (s, a, nxt), np.asarray(terminated, dtype=np.int32))
        np.add.at(self.reward_sum, (s, a), np.asarray(rewards, dtype=np.float64))

    def learned_model(self, unknown_value: float) -> tuple[np.ndarray, np.ndarray]:
        """(R, C) estimated from the counts; a never-tried (s, a) ends the episode with ``unknown_value``."""
        n = self.visits.astype(np.float64)
        tried = n > 0
        safe = np.where(tried, n, 1.0)
        rewards = np.where(tried, self.reward_sum / safe, unknown_value)
        continuation = (self.transitions - self.ended) / safe[..., None]  # transitions that did not end it
        return rewards, continuation

    def tables(self) -> dict[str, np.ndarray]:
        return {"q": self.q, "visits": self.visits, "transitions": self.transitions}

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            "q": torch.from_numpy(self.q.copy()),
            "visits": torch.from_numpy(self.visits.copy()),
            "transitions": torch.from_numpy(self.transitions.copy()),
            "ended": torch.from_numpy(self.ended.copy()),
            "reward_sum": torch.from_numpy(self.reward_sum.copy()),
            "rng": self.rng.bit_generator.state,
            "eval_rng": self.eval_rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("q", "visits", "transitions", "ended", "reward_sum"):
            saved, ours = state[key], getattr(self, key)
            if tuple(saved.shape) != ours.shape:
                raise ValueError(f"{key} has shape {tuple(saved.shape)} in the checkpoint, {ours.shape} in this env")
            setattr(self, key, saved.numpy().copy())
        self.rng.bit_generator.state = state["rng"]
        self.eval_rng.bit_generator.state = state["eval_rng"]


class TemporalDifference(Tabular):
    """Q-learning and SARSA: a TD update of Q(s, a) with a scheduled step size."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.q[:] = self.cfg.q_init

    def alpha(self, step: int, states: np.ndarray | None = None, actions: np.ndarray | None = None) -> np.ndarray | float:
        c = self.cfg
        if c.alpha_schedule == "visits" and states is not None:
            # 1/N(s, a) (Robbins-Monro): converges on stochastic envs; the counts include this visit
            return np.maximum(c.alpha_end, c.alpha / np.maximum(self.visits[states, actions], 1))
        if c.alpha_decay_steps <= 0:
            return c.alpha  # constant
        return linear_schedule(c.alpha, c.alpha_end, c.alpha_decay_steps, step)

    def schedules(self, step: int) -> dict[str, float]:
        out = super().schedules(step)
        if self.cfg.alpha_schedule == "linear":
            out["train/alpha"] = float(self.alpha(step))
        return out

    def td_update(self, states, actions, targets, step: int) -> float:
        """Q(s, a) += alpha (target - Q(s, a)) for each env's transition, in env order; mean |TD error|."""
        alphas = np.broadcast_to(self.alpha(step, states, actions), states.shape)
        errors = np.empty(len(states))
        for i, (s, a) in enumerate(zip(states, actions)):  # in order: two envs may share an (s, a)
            errors[i] = targets[i] - self.q[s, a]
            self.q[s, a] += alphas[i] * errors[i]
        return float(np.abs(errors).mean())
