"""What several algorithms share, one of each: epsilon-greedy acting, advantage normalization,
the gradient-norm clip, explained variance and the evaluation replay (schedules and intervals:
``rlexp.schedules``)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import torch


def epsilon_greedy(greedy: Callable[[], np.ndarray], n_actions: int, n: int, epsilon: float,
                   rng: np.random.Generator, greedy_draws: bool = True) -> np.ndarray:
    """``n`` actions: uniform among ``n_actions`` with probability ``epsilon``, else ``greedy()``.

    The draws, in order: whatever ``greedy`` draws (e.g. random tie-breaks), the ``n`` coin
    flips, then one uniform action per exploring env. ``greedy_draws=False`` says ``greedy``
    draws nothing from ``rng`` (a network's argmax): then it is not called at all when every
    env explores, with the same draws.
    """
    if greedy_draws:
        actions = np.array(greedy(), copy=True)
        explore = rng.random(n) < epsilon
    else:
        explore = rng.random(n) < epsilon
        actions = np.zeros(n, dtype=np.int64) if explore.all() else np.array(greedy(), copy=True)
    if explore.any():
        actions[explore] = rng.integers(n_actions, size=int(explore.sum()))
    return actions


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit std (advantages before a policy-gradient step); as is for one element."""
    if x.numel() <= 1:
        return x
    return (x - x.mean()) / (x.std() + 1e-8)


def clip_grad_norm_(grad: torch.Tensor, max_norm: float) -> None:
    """In-place gradient-norm clip of one flat gradient (``networks.flatten_parameters``), the
    same rule as ``torch.nn.utils.clip_grad_norm_``.

    On CPU the scale is read back as a Python float: scaling by a 0-dim tensor costs ~6x
    more there, and most updates need no scaling at all. On GPU it stays on the device
    (no sync).
    """
    norm = torch.linalg.vector_norm(grad)
    if grad.device.type == "cpu":
        scale = max_norm / (float(norm) + 1e-6)
        if scale < 1.0:
            grad.mul_(scale)
    else:
        grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 - Var(returns - values) / Var(returns): how much of the returns the critic explains."""
    variance = returns.var()
    return float(1 - (returns - values).var() / variance) if variance > 0 else float("nan")


EVAL_BUFFER_TRANSITIONS = 1_024  # the replay capacity of a replay learner built to evaluate a saved run


def evaluation_replay(cfg: Any) -> Any:
    """A replay learner's config for evaluating a saved run: evaluation never fills the replay,
    so a small one (at least one batch) instead of the training one."""
    return dataclasses.replace(cfg, buffer_capacity_transitions=min(cfg.buffer_capacity_transitions,
                                                                    max(EVAL_BUFFER_TRANSITIONS, cfg.batch_size)))
