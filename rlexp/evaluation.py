"""Policy evaluation on an env of its own."""

from __future__ import annotations

from pathlib import Path
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
    episodes are not over-represented. ``envs`` is a vector env of the env stack
    (``rlexp.envs.make_vector_env``): it autoresets in the same step and records each
    episode's return and length, the real score whatever learning signals it adds.

    Returns:
        (returns, lengths), each of shape ``(episodes,)``, in completion order.
    """
    n = envs.num_envs
    targets = np.array([(episodes + i) // n for i in range(n)])
    counts = np.zeros(n, dtype=int)
    returns: list[float] = []
    lengths: list[int] = []
    obs, _ = envs.reset(seed=seed)
    while (counts < targets).any():
        obs, _, _, _, infos = envs.step(policy(obs))
        if "_episode" not in infos:
            continue
        stats = infos["episode"]
        for i in np.flatnonzero(infos["_episode"]):
            if counts[i] < targets[i]:
                returns.append(float(stats["r"][i]))
                lengths.append(int(stats["l"][i]))
                counts[i] += 1
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


def _fmt(value: float) -> str:
    """2 decimals, trailing zeros dropped: 21.0 -> 21, 9.6667 -> 9.67."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def describe_episodes(run_path: Path, record: dict) -> list[str]:
    """``rlexp eval``'s lines for an episodes record (``rlexp.runs.evaluate_run``)."""
    step = record["step"] if record["step"] is not None else "?"
    eps = record.get("epsilon_eval")
    lines = [f"checkpoint: {run_path / record['checkpoint']} (step {step})",
             f"env:        {record['env']}, {record['episodes']} episodes, seed {record['seed']}"
             + (f", epsilon_eval {eps:g}" if eps is not None else "")]
    protocol = record.get("protocol")
    if protocol:
        details = ", ".join(f"{k}={v}" for k, v in protocol.items() if k != "name")
        lines.append(f"protocol:   {protocol['name']}" + (f" ({details})" if details else ""))
    lines += [f"return:     mean {_fmt(record['mean'])}, std {_fmt(record['std'])} over {record['episodes']} episodes",
              f"returns:    {' '.join(_fmt(r) for r in record['returns'])}",
              f"lengths:    {' '.join(str(n) for n in record['lengths'])}"]
    lines += [f"video:      {run_path / v['path']} (return {_fmt(v['return'])}, {v['frames']} frames)"
              for v in record.get("videos", [])]
    return lines + [f"recorded in {run_path / 'evals.jsonl'}"]
