"""Deep Q-Network (Mnih et al. 2015), with optional Double DQN (van Hasselt et al. 2016).

Reads top to bottom: epsilon-greedy acting, replay, target network, TD update.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from rlexp.algos.base import Algorithm
from rlexp.algos.common import clip_grad_norm_, epsilon_greedy, evaluation_replay
from rlexp.algos.flat_adam import FlatAdam
from rlexp.buffers import FrameReplayBuffer, ReplayBatch, ReplayBuffer
from rlexp.config import DQNConfig
from rlexp.errors import ConfigError
from rlexp.networks import MLP, build_q_network, flatten_parameters, is_image_space
from rlexp.schedules import crossed, linear_schedule


def td_loss(q: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """The TD loss (mean over the batch): ``huber`` (smooth L1, beta 1) or ``mse``."""
    return F.smooth_l1_loss(q, target) if kind == "huber" else F.mse_loss(q, target)


def td_targets(rewards: torch.Tensor, terminated: torch.Tensor, next_q: torch.Tensor, gamma: float) -> torch.Tensor:
    """Bellman targets ``r + gamma * (1 - terminated) * next_q``.

    Only termination cuts the bootstrap: a truncated transition (time limit) has
    ``terminated=0`` and ``next_q`` evaluated at its real final observation.
    """
    return rewards + gamma * (1.0 - terminated) * next_q


def replay_bytes(capacity: int, obs_space, frames: bool) -> int:
    """Storage a replay of ``capacity`` transitions needs (observations dominate)."""
    item = np.dtype(obs_space.dtype).itemsize
    per_obs = int(np.prod(obs_space.shape)) * item
    per_transition = per_obs // obs_space.shape[0] if frames else 2 * per_obs  # frames: one new frame each
    return capacity * (per_transition + 16)


def replay_device(mode: str, device: torch.device, needed_bytes: int, free_bytes: int | None = None) -> torch.device:
    """Where the replay lives: with the updates when it fits (80% of free GPU memory), else host.

    ``mode`` is ``device.replay``: auto, device (always with the updates) or host.
    """
    if device.type == "cpu" or mode == "host":
        return torch.device("cpu")
    if mode == "device":
        return device
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(device) if device.type == "cuda" else (needed_bytes, 0)
    return device if needed_bytes <= 0.8 * free_bytes else torch.device("cpu")


class DQN(Algorithm):
    """Q-learning with a neural network, experience replay and a target network."""

    cfg: DQNConfig
    DEVICE_SETTINGS = ("amp", "compile", "replay")

    def __init__(self, cfg: DQNConfig, obs_space, action_space, network, device, seed, num_envs, compute=None,
                 total_steps=None, env_model=None):
        super().__init__(cfg, obs_space, action_space, network, device, seed, num_envs, compute, total_steps, env_model)
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ConfigError(
                f"algo=dqn needs a discrete action space, this env's is {action_space}; "
                "choose a discrete-action env (e.g. env=cartpole)"
            )
        self.n_actions = int(action_space.n)
        self.q = build_q_network(network, obs_space, action_space).to(device)
        # One flat parameter: Adam, the gradient clip and the target sync each become a few
        # kernels over one tensor instead of a few per layer; fused Adam runs on CPU
        # (torch >= 2.4) and CUDA.
        self.flat_params = flatten_parameters(self.q)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.target_flat_params = flatten_parameters(self.q_target, with_grad=False)
        if cfg.optimizer == "adam":
            self.optimizer = FlatAdam(self.flat_params, lr=cfg.lr, eps=cfg.optimizer_eps)
        else:  # DeepMind's RMSProp, as torch's centered variant
            self.optimizer = torch.optim.RMSprop(
                [self.flat_params], lr=cfg.lr, alpha=cfg.rmsprop_alpha, eps=cfg.optimizer_eps, centered=True
            )
        # stacked frames: store each frame once (a 1M-transition Atari buffer in ~7 GB, not ~56)
        frames = is_image_space(obs_space)
        buffer_cls = FrameReplayBuffer if frames else ReplayBuffer
        needed = replay_bytes(cfg.buffer_capacity_transitions, obs_space, frames)
        self.storage_device = replay_device(self.compute.replay, device, needed)
        self.buffer = buffer_cls(
            cfg.buffer_capacity_transitions, obs_space.shape, obs_space.dtype, self.storage_device, seed,
            num_envs=num_envs,
        )
        # compiled forward passes when asked (they share the modules' parameters)
        self._compiled = (self.compiled(self.q), self.compiled(self.q_target)) if self.compute.compile else None
        # the fast path: an MLP's gradient by hand (MLP.backward_into_grad), autograd's numbers in
        # fewer operations; device.fast_path=off, autocast and compiled passes go through autograd
        self.manual_grad = isinstance(self.q, MLP) and self.q.manual_grad and self.fast_path_allowed
        self._one = torch.ones((), device=device)  # d(loss)/d(loss)
        self.eval_rng = np.random.default_rng([seed, 1])
        self.updates = 0  # gradient updates made
        self.target_syncs = 0  # target-network updates made

    # ------------------------------------------------------------------ acting

    @classmethod
    def evaluation_config(cls, cfg: DQNConfig) -> DQNConfig:
        return evaluation_replay(cfg)

    def epsilon(self, step: int) -> float:
        """Exploration epsilon at agent step ``step`` (decay starts at step 0)."""
        c = self.cfg
        return linear_schedule(c.epsilon_start, c.epsilon_end, c.epsilon_decay_steps, step)

    def schedules(self, step: int) -> dict[str, float]:
        return {"train/epsilon": self.epsilon(step)}

    @property
    def q_fn(self):
        return self._compiled[0] if self._compiled else self.q

    @property
    def q_target_fn(self):
        return self._compiled[1] if self._compiled else self.q_target

    @torch.inference_mode()
    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q(s, a) for a batch of observations."""
        with self.autocast():
            q = self.q_fn(torch.as_tensor(obs, device=self.device))
        return q.argmax(dim=1).cpu().numpy()

    def _epsilon_greedy(self, obs: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        return epsilon_greedy(lambda: self.greedy(obs), self.n_actions, obs.shape[0], epsilon, rng, greedy_draws=False)

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        # uniform random before learning starts, as in the DQN paper's replay warm-up
        epsilon = 1.0 if step < self.cfg.learning_starts_steps else self.epsilon(step)
        return self._epsilon_greedy(obs, epsilon, self.rng)

    def predict(self, obs: np.ndarray) -> np.ndarray:
        # its own RNG: evaluating must not change the training run's random stream
        return self._epsilon_greedy(obs, self.cfg.epsilon_eval, self.eval_rng)

    # ------------------------------------------------------------------ learning

    def observe(self, obs, actions, rewards, next_obs, terminated, truncated, step, episode_end=None):
        c = self.cfg
        if episode_end is None:
            episode_end = np.logical_or(terminated, truncated)
        self.buffer.add(obs, actions, rewards, next_obs, terminated, episode_end)
        self.clock.lap("replay")
        after = step + len(actions)
        if crossed(step, after, c.target_update_interval_steps):
            self.sync_target()
        if after > c.learning_starts_steps and crossed(step, after, c.train_interval_steps):
            return self.train(c.updates_per_train)
        return {}

    @torch.no_grad()
    def sync_target(self) -> None:
        """Copy (tau=1) or Polyak-average (tau<1) the online weights into the target network."""
        if self.cfg.tau >= 1.0:
            self.target_flat_params.copy_(self.flat_params)
        else:
            self.target_flat_params.lerp_(self.flat_params, self.cfg.tau)
        self.target_syncs += 1

    def train(self, num_updates: int) -> dict[str, float]:
        """``num_updates`` gradient steps on fresh uniform minibatches."""
        c = self.cfg
        batch = self.buffer.sample(c.batch_size, num_batches=num_updates)
        if self.storage_device != self.device:  # replay in pinned host memory, updates on the GPU
            batch = ReplayBatch(*(t.pin_memory().to(self.device, non_blocking=True) for t in batch))
        self.clock.lap("replay")
        targets = None
        if not c.double_dqn:
            # The target network does not change during a training phase, so every update's
            # targets come from one batched forward pass: the same numbers, far less overhead.
            with torch.no_grad(), self.autocast():
                next_obs = batch.next_obs.flatten(0, 1)
                if self.manual_grad:  # the same numbers, without allocating each layer's output twice
                    next_q = self.q_target.forward_saving(next_obs)[0].amax(dim=1)
                else:
                    next_q = self.q_target_fn(next_obs).float().amax(dim=1)
                targets = td_targets(batch.rewards, batch.terminated, next_q.view(num_updates, c.batch_size), c.gamma)
        flat = self.flat_params
        q_taken, q_targets = [], []  # per update; the logged loss is computed once at the end
        for i in range(num_updates):
            obs, actions = batch.obs[i], batch.actions[i]
            if targets is None:
                with torch.no_grad(), self.autocast():
                    next_obs = batch.next_obs[i]
                    best = self.q_fn(next_obs).argmax(dim=1, keepdim=True)
                    next_q = self.q_target_fn(next_obs).float().gather(1, best).squeeze(1)
                    target = td_targets(batch.rewards[i], batch.terminated[i], next_q, c.gamma)
            else:
                target = targets[i]
            if self.manual_grad:
                q = self._manual_backward(obs, actions, target)
            else:  # the reference
                with self.autocast():
                    q = self.q_fn(obs).float().gather(1, actions.unsqueeze(1)).squeeze(1)
                flat.grad.zero_()  # the layers' .grad are views of it: never set it to None
                td_loss(q, target, c.loss).backward()
            if c.max_grad_norm is not None:
                clip_grad_norm_(flat.grad, c.max_grad_norm)
            self.optimizer.step()
            q_taken.append(q.detach())
            q_targets.append(target)
        self.updates += num_updates
        q_all = torch.stack(q_taken)
        with torch.no_grad():
            loss = td_loss(q_all, torch.stack(q_targets), c.loss)  # the mean of the updates' losses (equal batches)
        return {
            "loss/td": loss.item(),
            "train/q_mean": q_all.mean().item(),
            "train/updates": float(self.updates),
        }

    @torch.no_grad()
    def _manual_backward(self, obs, actions, target) -> torch.Tensor:
        """The fast path: :func:`td_loss`'s gradient written into ``flat_params.grad`` by hand
        (the loss's own backward kernel, then the MLP's ``backward_into_grad``): the kernels
        autograd would run, without its bookkeeping. Returns Q of the taken actions.
        ``tests/algos/test_dqn.py`` holds it to autograd's numbers over random settings."""
        out, inputs = self.q.forward_saving(obs)
        index = actions.unsqueeze(1)
        q = out.gather(1, index).squeeze(1)
        one = self._one
        if self.cfg.loss == "huber":
            grad_q = torch.ops.aten.smooth_l1_loss_backward(one, q, target, 1, 1.0)  # 1: mean reduction; beta 1
        else:
            grad_q = torch.ops.aten.mse_loss_backward(one, q, target, 1)
        grad_out = torch.zeros_like(out).scatter_add_(1, index, grad_q.unsqueeze(1))
        self.q.backward_into_grad(inputs, out, grad_out)
        return q

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            "q": self.q.state_dict(),
            "q_target": self.q_target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
            "target_syncs": self.target_syncs,
            "rng": self.rng.bit_generator.state,
            "eval_rng": self.eval_rng.bit_generator.state,
        }

    def buffer_state(self) -> dict[str, Any]:
        return {"replay": self.buffer.state_dict()}

    def load_buffer_state(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state["replay"])

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.q.load_state_dict(state["q"])
        self.q_target.load_state_dict(state["q_target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = state["updates"]
        self.target_syncs = state["target_syncs"]
        self.rng.bit_generator.state = state["rng"]
        self.eval_rng.bit_generator.state = state["eval_rng"]
