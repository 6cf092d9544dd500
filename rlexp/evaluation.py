"""Policy evaluation on an env of its own."""

from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np


def evaluate(
    policy: Callable[[np.ndarray], np.ndarray],
    envs: gym.vector.VectorEnv,
    episodes: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``episodes`` full episodes spread over the vector env's copies.

    Each copy runs a fixed share of the episodes (as SB3's ``evaluate_policy``), so short
    episodes are not over-represented. The env must autoreset in the same step.

    Returns:
        (returns, lengths), each of shape ``(episodes,)``, in completion order.
    """
    n = envs.num_envs
    targets = np.array([(episodes + i) // n for i in range(n)])
    counts = np.zeros(n, dtype=int)
    ep_return = np.zeros(n)
    ep_length = np.zeros(n, dtype=int)
    returns: list[float] = []
    lengths: list[int] = []
    obs, _ = envs.reset(seed=seed)
    while (counts < targets).any():
        obs, rewards, terminated, truncated, _ = envs.step(policy(obs))
        ep_return += rewards
        ep_length += 1
        for i in np.flatnonzero(terminated | truncated):
            if counts[i] < targets[i]:
                returns.append(float(ep_return[i]))
                lengths.append(int(ep_length[i]))
                counts[i] += 1
            ep_return[i] = 0.0
            ep_length[i] = 0
    return np.asarray(returns), np.asarray(lengths)


def episode_states(policy: Callable[[np.ndarray], np.ndarray], env: gym.Env, seed: int,
                   max_steps: int = 10_000) -> tuple[list, float]:
    """The states one episode visits under ``policy`` (a batch policy, called with one state).

    Returns:
        (states from the first to the last, the episode's return).
    """
    obs, _ = env.reset(seed=seed)
    states, total = [obs], 0.0
    for _ in range(max_steps):
        action = policy(np.asarray([obs]))[0]
        obs, reward, terminated, truncated, _ = env.step(action)
        states.append(obs)
        total += float(reward)
        if terminated or truncated:
            break
    return states, total
