"""What the off-policy continuous-control learners share (SAC, TD3, DDPG): a Box action space
normalized to [-1, 1], uniform random actions until learning starts, a replay buffer of
(observation, normalized action, reward, next observation, terminated), a critic ensemble
with a Polyak-averaged target, and the schedule of updates.

A subclass builds its actor and says how it acts (``_explore``, ``_greedy``) and how one
gradient step goes (``update``); its state adds to :meth:`state_dict`.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlexp.algos.base import Algorithm
from rlexp.algos.common import evaluation_replay
from rlexp.algos.dqn import replay_bytes, replay_device, td_targets
from rlexp.algos.flat_adam import FlatAdam
from rlexp.buffers import ReplayBuffer
from rlexp.errors import ConfigError
from rlexp.networks import flatten_parameters, is_image_space
from rlexp.networks.continuous import CriticEnsemble
from rlexp.schedules import crossed


def check_continuous(name: str, obs_space: gym.Space, action_space: gym.Space) -> None:
    """Refuse what an off-policy continuous learner cannot drive (one line, naming the fix)."""
    if not isinstance(action_space, gym.spaces.Box):
        raise ConfigError(f"algo={name} needs a continuous (Box) action space, this env's is {action_space}; choose "
                          "a continuous-action env (e.g. env=pendulum, env=hopper) or a discrete-action algorithm "
                          "(algo=dqn, algo=ppo)")
    if not (np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
        raise ConfigError(f"algo={name} needs finite action bounds (its policy acts in them), this env's are "
                          f"{action_space}")
    if not isinstance(obs_space, gym.spaces.Box) or is_image_space(obs_space):
        raise ConfigError(f"algo={name} needs vector observations (a Box of numbers), this env's are {obs_space}")


def polyak(target: torch.Tensor, online: torch.Tensor, tau: float) -> None:
    """``target <- (1 - tau) target + tau online`` (tau = 1: a copy)."""
    target.lerp_(online, tau)


class ContinuousOffPolicy(Algorithm):
    """The shared machinery (module docstring). ``cfg`` has ``gamma``, ``tau``, ``lr``,
    ``batch_size``, ``buffer_capacity_transitions``, ``learning_starts_steps``,
    ``train_interval_steps``, ``updates_per_train`` and ``n_critics``."""

    DEVICE_SETTINGS = ("replay",)

    def __init__(self, cfg, obs_space, action_space, network, device, seed, num_envs, compute=None,
                 total_steps=None, env_model=None):
        super().__init__(cfg, obs_space, action_space, network, device, seed, num_envs, compute, total_steps, env_model)
        check_continuous(cfg.name, obs_space, action_space)
        self.obs_dim = int(np.prod(obs_space.shape))
        self.action_dim = int(np.prod(action_space.shape))
        low, high = action_space.low.astype(np.float64).ravel(), action_space.high.astype(np.float64).ravel()
        self.center, self.half_range = (high + low) / 2, (high - low) / 2
        hidden, activation = list(network.hidden_sizes), network.activation
        self.critic = CriticEnsemble(cfg.n_critics, self.obs_dim, self.action_dim, hidden, activation).to(device)
        self.critic_flat = flatten_parameters(self.critic)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.critic_target_flat = flatten_parameters(self.critic_target, with_grad=False)
        self.critic_optimizer = FlatAdam(self.critic_flat, lr=cfg.lr)
        capacity = cfg.buffer_capacity_transitions
        self.storage_device = replay_device(self.compute.replay, device, replay_bytes(capacity, obs_space, False))
        self.buffer = ReplayBuffer(capacity, (self.obs_dim,), np.float32, self.storage_device, seed, num_envs=num_envs,
                                   action_shape=(self.action_dim,), action_dtype=torch.float32)
        # the policy's noise: a generator of its own, so a checkpoint holds its state (exact resume)
        self.noise = torch.Generator(device=device).manual_seed(int(self.rng.integers(2**62)))
        self.eval_rng = np.random.default_rng([seed, 1])
        self.updates = 0  # gradient steps of the critics

    @classmethod
    def evaluation_config(cls, cfg: Any) -> Any:
        return evaluation_replay(cfg)

    # ------------------------------------------------------------------ actions

    def to_env(self, normalized: np.ndarray) -> np.ndarray:
        """Actions in [-1, 1] mapped to the env's bounds, in its action shape and dtype."""
        out = self.center + self.half_range * np.clip(normalized, -1.0, 1.0)
        return out.astype(self.action_space.dtype).reshape(len(normalized), *self.action_space.shape)

    def from_env(self, actions: np.ndarray) -> np.ndarray:
        """The env's actions back in [-1, 1] (what the critics and the replay see)."""
        flat = np.asarray(actions, dtype=np.float64).reshape(len(actions), -1)
        return ((flat - self.center) / self.half_range).astype(np.float32)

    def _obs(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(obs, dtype=np.float32).reshape(len(obs), -1), device=self.device)

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        if step < self.cfg.learning_starts_steps:  # uniform random actions fill the replay first
            return self.to_env(self.rng.uniform(-1.0, 1.0, size=(len(obs), self.action_dim)))
        with torch.no_grad():
            return self.to_env(self._explore(self._obs(obs)).cpu().numpy())

    def predict(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.to_env(self._greedy(self._obs(obs)).cpu().numpy())

    @abstractmethod
    def _explore(self, obs: torch.Tensor) -> torch.Tensor:
        """Training actions in [-1, 1] for a batch of observations (with the policy's noise)."""

    @abstractmethod
    def _greedy(self, obs: torch.Tensor) -> torch.Tensor:
        """Evaluation actions in [-1, 1]."""

    # ------------------------------------------------------------------ learning

    def observe(self, obs, actions, rewards, next_obs, terminated, truncated, step, episode_end=None):
        n = len(actions)
        self.buffer.add(np.asarray(obs, dtype=np.float32).reshape(n, -1), self.from_env(actions), rewards,
                        np.asarray(next_obs, dtype=np.float32).reshape(n, -1), terminated)
        self.clock.lap("replay")
        c, after = self.cfg, step + n
        if after > c.learning_starts_steps and crossed(step, after, c.train_interval_steps):
            return self.train(c.updates_per_train)
        return {}

    def train(self, num_updates: int) -> dict[str, float]:
        """``num_updates`` gradient steps, each on a fresh uniform minibatch; the mean of their metrics."""
        batches = self.buffer.sample(self.cfg.batch_size, num_batches=num_updates)
        if self.storage_device != self.device:
            batches = batches.to(self.device)
        self.clock.lap("replay")
        sums: dict[str, list[torch.Tensor]] = {}
        one_step = batches[:5]  # obs, actions, rewards, next_obs, terminated (no n-step, uniform)
        for i in range(num_updates):
            for key, value in self.update(*(field[i] for field in one_step)).items():
                sums.setdefault(key, []).append(value)  # the actor's metrics only where it was updated
        # the metrics stay on the device until here: one transfer per training phase, not one per metric and update
        # (one update, the common case, is its own mean: no stack and mean per metric)
        means = torch.stack([v[0] if len(v) == 1 else torch.stack(v).mean() for v in sums.values()]).tolist()
        return {**dict(zip(sums, means)), "train/updates": float(self.updates)}

    @abstractmethod
    def update(self, obs, actions, rewards, next_obs, terminated) -> dict[str, torch.Tensor]:
        """One gradient step of the critics (and, when due, the actor) on a minibatch; its
        metrics as detached scalar tensors. Autograd's gradients, or with ``self.manual_grad``
        (``device.fast_path=auto``, the default) the hand-written ones: the same arithmetic
        (``tests/algos/test_off_policy.py`` holds the two paths equal)."""

    def critic_step(self, obs, actions, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of every critic toward the TD ``targets``: the sum over critics of each
        one's mean squared error (as SB3 and CleanRL, halved as SB3). Returns (Q, loss)."""
        q = self.critic(obs, actions)
        loss = 0.5 * (q - targets).square().mean(1).sum()
        self.critic_flat.grad.zero_()
        loss.backward()
        self.critic_optimizer.step()
        self.updates += 1
        return q.detach(), loss.detach()

    def critic_step_by_hand(self, obs, actions, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`critic_step` with the hand-written gradient (the fast path): the same loss."""
        q, inputs = self.critic.forward_saving(obs, actions)
        error = q - targets
        loss = 0.5 * error.square().mean(1).sum()
        self.critic.backward(inputs, error / len(obs))  # d(loss)/dQ = (Q - target) / batch
        self.critic_optimizer.step()
        self.updates += 1
        return q, loss

    def targets(self, rewards, terminated, next_q: torch.Tensor) -> torch.Tensor:
        """Bellman targets; termination alone cuts the bootstrap (a time limit does not)."""
        return td_targets(rewards, terminated, next_q, self.cfg.gamma)

    @torch.no_grad()
    def sync_critic_target(self) -> None:
        polyak(self.critic_target_flat, self.critic_flat, self.cfg.tau)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            "critic": self.critic.state_dict(), "critic_target": self.critic_target.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(), "updates": self.updates,
            "rng": self.rng.bit_generator.state, "eval_rng": self.eval_rng.bit_generator.state,
            "noise": self.noise.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.updates = state["updates"]
        self.rng.bit_generator.state = state["rng"]
        self.eval_rng.bit_generator.state = state["eval_rng"]
        self.noise.set_state(state["noise"])

    def buffer_state(self) -> dict[str, Any]:
        return {"replay": self.buffer.state_dict()}

    def load_buffer_state(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state["replay"])
