"""Value iteration (Bellman 1957): Q(s,a) = R(s,a) + gamma sum_s' P(s'|s,a) max_a' Q(s',a'), to convergence.

Model-based: with ``model=known`` it plans once with the env's exact model (the reference
optimum the other tabular methods are tested against) and acts greedily. With
``model=learned`` it estimates the model from its own visit counts, acts epsilon-greedy on
the plan, and replans every ``plan_interval_steps``; a never-tried (s, a) is valued
``unknown_value`` (optimism makes it try it).
"""

from __future__ import annotations

from rlexp.algos.tabular import TABULAR_ENVS, Tabular, model_arrays, value_iteration
from rlexp.config import ValueIterationConfig
from rlexp.errors import ConfigError
from rlexp.schedules import crossed


class ValueIteration(Tabular):
    """Planning by value iteration on a known or a learned model."""

    cfg: ValueIterationConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sweeps = 0  # planning sweeps of the last plan
        self.plans = 0
        if self.cfg.model == "known":
            if self.env_model is None:
                raise ConfigError(
                    "algo.model=known needs an env that exposes its transition model (P); "
                    f"use {TABULAR_ENVS}, or algo.model=learned"
                )
            self.plan(*model_arrays(self.env_model, self.n_states, self.n_actions))

    def plan(self, rewards, continuation) -> None:
        c = self.cfg
        self.q, self.sweeps = value_iteration(rewards, continuation, c.gamma, c.theta, c.max_iterations)
        self.plans += 1

    def observe(self, obs, actions, rewards, next_obs, terminated, truncated, step, episode_end=None):
        self.count(obs, actions, rewards, next_obs, terminated)
        c = self.cfg
        after = step + len(actions)
        if c.model == "learned" and crossed(step, after, c.plan_interval_steps):
            self.plan(*self.learned_model(c.unknown_value))
            return {"train/planning_sweeps": float(self.sweeps), "train/plans": float(self.plans)}
        return {}
