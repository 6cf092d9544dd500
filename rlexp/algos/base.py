"""The contract between the training loop and a learning algorithm.

An algorithm holds its networks, optimizers and storage, and does the learning math. It
never opens files, prints or talks to W&B: it returns metrics and state, and the loop
decides what to do with them.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlexp.config import DeviceConfig, NetworkConfig
from rlexp.timing import PhaseClock


class DeviceSettings:
    """``device.amp`` and ``device.compile`` for a learner that sets ``self.device`` and
    ``self.compute``; ``DEVICE_SETTINGS`` names the ``device.*`` options a learner honours
    (``amp``, ``compile``, ``replay``): a run that sets another one away from its default is
    refused before it starts, instead of the setting being silently ignored."""

    DEVICE_SETTINGS: ClassVar[tuple[str, ...]] = ()
    device: torch.device
    compute: DeviceConfig

    def autocast(self) -> contextlib.AbstractContextManager:
        """bfloat16 autocast for network passes when ``device.amp`` (no gradient scaler needed;
        losses are computed in float32)."""
        if not self.compute.amp:
            return contextlib.nullcontext()  # cheaper than a disabled autocast, on the per-step path
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    @property
    def plain_passes(self) -> bool:
        """Network passes run as written, in float32 and uncompiled: what a hand-written
        gradient (``MLP.backward_into_grad``) needs."""
        return not self.compute.amp and not self.compute.compile

    @property
    def fast_path_allowed(self) -> bool:
        """Whether a hand-written gradient may replace autograd's: ``device.fast_path=auto`` and
        plain passes. A learner with one still decides whether its networks fit it."""
        return self.compute.fast_path == "auto" and self.plain_passes

    def compiled(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module``, compiled by ``torch.compile`` when ``device.compile`` (it shares the
        module's parameters: state dicts and optimizers keep working on the module)."""
        return torch.compile(module) if self.compute.compile else module


class Algorithm(DeviceSettings, ABC):
    """Base class of the gym-stepping algorithms: ``act`` while training, ``predict`` for
    evaluation, ``observe`` to learn."""

    manual_grad: bool = False  # the updates write their gradient by hand (the fast path) instead of autograd

    @classmethod
    def evaluation_config(cls, cfg: Any) -> Any:
        """The algorithm's config for evaluating a saved run (``rlexp eval``, ``rlexp play``):
        the trained one, less what only training uses (e.g. a large replay buffer)."""
        return cfg

    @property
    def update_path(self) -> str:
        """How the updates compute their gradient, for summary.json: "hand-written" or "autograd"."""
        return "hand-written" if self.manual_grad else "autograd"

    def __init__(
        self,
        cfg: Any,
        obs_space: gym.Space,
        action_space: gym.Space,
        network: NetworkConfig,
        device: torch.device,
        seed: int,
        num_envs: int,
        compute: DeviceConfig | None = None,
        total_steps: int | None = None,
        env_model: Any = None,
    ):
        self.cfg = cfg
        self.total_steps = total_steps  # the run's budget, for schedules that anneal to its end
        # the env's exact model where it has one (toy-text and maze envs: P[s][a] = [(p, s', r, terminated)])
        self.env_model = env_model
        self.compute = compute or DeviceConfig()  # amp, compile and replay placement
        self.obs_space = obs_space
        self.action_space = action_space
        self.device = device
        self.num_envs = num_envs
        self.rng = np.random.default_rng(seed)
        # the trainer's clock: an algorithm laps "replay" after storing or sampling experience
        # (the trainer laps the rest of observe() as "update"); see rlexp.timing
        self.clock = PhaseClock()

    @abstractmethod
    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        """Training actions (with exploration) for a batch of observations at agent step ``step``."""

    @abstractmethod
    def predict(self, obs: np.ndarray) -> np.ndarray:
        """Evaluation actions for a batch of observations."""

    @abstractmethod
    def observe(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        step: int,
        episode_end: np.ndarray | None = None,
    ) -> dict[str, float]:
        """Take one vector step of experience; learn when due.

        ``next_obs`` is the real next observation (the final one where an episode ended),
        ``terminated`` the learning terminal (no bootstrap; includes an Atari life loss),
        ``episode_end`` where the env's episode really ended (default: terminated or
        truncated), and ``step`` the agent-step count before this transition. Returns
        metrics of any update it made (empty when it made none).
        """

    def tables(self) -> dict[str, np.ndarray]:
        """Tabular quantities for pictures: ``q`` (S, A) and, where counted, ``visits`` (S, A)
        and ``transitions`` (S, A, S). Empty for function approximators."""
        return {}

    def schedules(self, step: int) -> dict[str, float]:
        """Current values of scheduled quantities (e.g. ``train/epsilon``), for logging."""
        return {}

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue learning but the buffers: networks, optimizers, counters, RNG."""

    def non_finite(self) -> str:
        """The name of the first state tensor holding a NaN or inf ("" when all are finite): a
        diverged learner must not overwrite a good checkpoint."""
        return first_non_finite(self.state_dict())

    def buffer_state(self) -> dict[str, Any] | None:
        """Experience held for learning (a replay buffer, a partial rollout or episode), as
        tensors and plain data, for an exact resume; None when the algorithm holds none."""
        return None

    def load_buffer_state(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`buffer_state`."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""


def first_non_finite(node: Any, prefix: str = "") -> str:
    """The dotted name of the first floating tensor in a (nested) state dict holding a NaN or
    an inf; "" when all are finite."""
    if isinstance(node, torch.Tensor):
        return prefix if node.is_floating_point() and not bool(torch.isfinite(node).all()) else ""
    if isinstance(node, dict):
        for key, value in node.items():
            found = first_non_finite(value, f"{prefix}.{key}" if prefix else str(key))
            if found:
                return found
    return ""
