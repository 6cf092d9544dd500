"""Deep Q-Network (Mnih et al. 2015) and the parts Rainbow combines (Hessel et al. 2018).

Reads top to bottom: epsilon-greedy (or noisy) acting, replay, target network, TD update.
Each part is a setting that composes with the others: Double DQN (van Hasselt et al. 2016),
n-step returns and prioritized replay (Schaul et al. 2016) in the buffers, dueling heads
(Wang et al. 2016) and noisy layers (Fortunato et al. 2018) in :mod:`rlexp.networks.q`, and a
value distribution, C51 (Bellemare et al. 2017) or QR-DQN's quantiles (Dabney et al. 2018).
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
from rlexp.algos.dqn_parts import project_distribution, quantile_huber_loss, quantile_huber_loss_sorted, random_shift
from rlexp.algos.flat_adam import FlatAdam
from rlexp.buffers import FrameReplayBuffer, ReplayBatch, ReplayBuffer
from rlexp.config import DQNConfig
from rlexp.errors import ConfigError
from rlexp.networks import MLP, build_q_network, flatten_parameters, is_image_space
from rlexp.schedules import crossed, linear_schedule


def td_loss(q: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """The TD loss (mean over the batch): ``huber`` (smooth L1, beta 1) or ``mse``."""
    return F.smooth_l1_loss(q, target) if kind == "huber" else F.mse_loss(q, target)


def td_targets(rewards: torch.Tensor, terminated: torch.Tensor, next_q: torch.Tensor,
               gamma: float | torch.Tensor) -> torch.Tensor:
    """Bellman targets ``r + gamma * (1 - terminated) * next_q``.

    Only termination cuts the bootstrap: a truncated transition (time limit) has
    ``terminated=0`` and ``next_q`` evaluated at its real final observation. With n-step
    returns ``gamma`` is each transition's ``gamma ** steps`` (the batch's ``discounts``).
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
        self.q = build_q_network(network, obs_space, action_space, atoms=cfg.num_atoms or 1, dueling=cfg.dueling,
                                 noisy=cfg.noisy, noisy_std_init=cfg.noisy_std_init).to(device)
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
            num_envs=num_envs, n_step=cfg.n_step, gamma=cfg.gamma,
            priority_exponent=cfg.priority_exponent if cfg.replay == "prioritized" else None,
        )
        # C51's fixed atoms; QR-DQN learns where its quantiles sit
        self.support = torch.linspace(cfg.v_min, cfg.v_max, cfg.num_atoms, device=device) \
            if cfg.distributional == "c51" else None
        # the noisy layers' noise: a generator of its own, so a checkpoint holds its state (exact resume)
        self.noise = torch.Generator(device=device).manual_seed(int(self.rng.integers(2**62))) if cfg.noisy else None
        if cfg.augmentation != "none" and not frames:
            raise ConfigError(f"algo.augmentation={cfg.augmentation} shifts image frames; this env's observations are "
                              f"{obs_space.shape}: use algo.augmentation=none")
        self.augment = torch.Generator(device=device).manual_seed(int(self.rng.integers(2**62))) \
            if cfg.augmentation != "none" else None
        # the per-update path (below) for the parts whose update is not a plain TD regression
        self.per_update = (cfg.noisy or cfg.replay == "prioritized" or cfg.distributional != "none"
                           or self.augment is not None)
        self.step = 0  # agent steps seen (the importance-sampling exponent anneals over the run)
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

    def q_values(self, out: torch.Tensor) -> torch.Tensor:
        """Action values from the network's outputs: the outputs, C51's mean over its atoms, or
        the mean of QR-DQN's quantiles."""
        if self.cfg.distributional == "c51":
            return (torch.softmax(out.float(), dim=-1) * self.support).sum(-1)
        if self.cfg.distributional == "qr":
            return out.float().mean(-1)
        return out

    @torch.inference_mode()
    def greedy(self, obs: np.ndarray, explore: bool = False) -> np.ndarray:
        """argmax_a Q(s, a) for a batch of observations; ``explore`` draws fresh noise for noisy
        layers first (training actions)."""
        if explore and self.noise is not None:
            self.q.sample_noise(self.noise)
        with self.autocast():
            q = self.q_values(self.q_fn(torch.as_tensor(obs, device=self.device)))
        return q.argmax(dim=1).cpu().numpy()

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        # uniform random before learning starts, as in the DQN paper's replay warm-up
        epsilon = 1.0 if step < self.cfg.learning_starts_steps else self.epsilon(step)
        return epsilon_greedy(lambda: self.greedy(obs, explore=True), self.n_actions, obs.shape[0], epsilon, self.rng,
                              greedy_draws=False)

    def predict(self, obs: np.ndarray) -> np.ndarray:
        # its own RNG: evaluating must not change the training run's random stream; noisy
        # layers act with their mean weights (the evaluation policy has no noise)
        self.q.eval()
        try:
            return epsilon_greedy(lambda: self.greedy(obs), self.n_actions, obs.shape[0], self.cfg.epsilon_eval,
                                  self.eval_rng, greedy_draws=False)
        finally:
            self.q.train()

    # ------------------------------------------------------------------ learning

    def observe(self, obs, actions, rewards, next_obs, terminated, truncated, step, episode_end=None):
        c = self.cfg
        if episode_end is None:
            episode_end = np.logical_or(terminated, truncated)
        self.buffer.add(obs, actions, rewards, next_obs, terminated, episode_end)
        self.clock.lap("replay")
        after = step + len(actions)
        self.step = after
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

    def importance_exponent(self, step: int) -> float:
        """beta of prioritized replay's importance weights at agent step ``step``: linear from
        start to end over the run (Schaul et al. 2016)."""
        c = self.cfg
        return linear_schedule(c.importance_exponent_start, c.importance_exponent_end, self.total_steps or 0, step)

    def train(self, num_updates: int) -> dict[str, float]:
        """``num_updates`` gradient steps on fresh minibatches."""
        if self.per_update:
            return self._train_per_update(num_updates)
        c = self.cfg
        batch = self.buffer.sample(c.batch_size, num_batches=num_updates)
        if self.storage_device != self.device:  # replay in pinned host memory, updates on the GPU
            batch = batch.to(self.device)
        self.clock.lap("replay")
        gamma = c.gamma if batch.discounts is None else batch.discounts
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
                targets = td_targets(batch.rewards, batch.terminated, next_q.view(num_updates, c.batch_size), gamma)
        flat = self.flat_params
        q_taken, q_targets = [], []  # per update; the logged loss is computed once at the end
        for i in range(num_updates):
            obs, actions = batch.obs[i], batch.actions[i]
            if targets is None:
                with torch.no_grad(), self.autocast():
                    next_obs = batch.next_obs[i]
                    best = self.q_fn(next_obs).argmax(dim=1, keepdim=True)
                    next_q = self.q_target_fn(next_obs).float().gather(1, best).squeeze(1)
                    target = td_targets(batch.rewards[i], batch.terminated[i], next_q,
                                        gamma if batch.discounts is None else gamma[i])
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

    def _train_per_update(self, num_updates: int) -> dict[str, float]:
        """The update of noisy layers, prioritized replay, value distributions and augmented frames: each
        minibatch sampled just before its update (the last update changed the priorities),
        new noise for every network pass, one loss per transition, weighted by importance."""
        c = self.cfg
        beta = self.importance_exponent(self.step)
        losses, q_taken = [], []
        for _ in range(num_updates):
            batch = self.buffer.sample(c.batch_size, importance_exponent=beta)
            if self.storage_device != self.device:
                batch = batch.to(self.device)
            self.clock.lap("replay")
            per_transition, q, errors = self._losses(batch)
            loss = per_transition.mean() if batch.weights is None else (batch.weights * per_transition).mean()
            self.flat_params.grad.zero_()
            loss.backward()
            if c.max_grad_norm is not None:
                clip_grad_norm_(self.flat_params.grad, c.max_grad_norm)
            self.optimizer.step()
            if batch.indices is not None:  # the new priorities count as replay time
                self.clock.lap("update")
                self.buffer.update_priorities(batch.indices, errors)
                self.clock.lap("replay")
            losses.append(loss.detach())
            q_taken.append(q.mean())
        self.updates += num_updates
        metrics = {
            "loss/td": torch.stack(losses).mean().item(),
            "train/q_mean": torch.stack(q_taken).mean().item(),
            "train/updates": float(self.updates),
        }
        if c.replay == "prioritized":
            metrics["train/importance_exponent"] = beta
        return metrics

    def _losses(self, batch: ReplayBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(the loss of each transition, with a graph; Q of the taken actions; the error each
        transition is prioritized by), each (B,).

        Expected values: the Huber or squared TD error. C51: the cross-entropy of the projected
        target distribution. QR-DQN: the quantile Huber loss against the target's quantiles.
        """
        c = self.cfg
        rows = torch.arange(batch.actions.shape[0], device=self.device)
        bootstrap = (c.gamma if batch.discounts is None else batch.discounts) * (1.0 - batch.terminated)
        obs, next_obs = batch.obs, batch.next_obs
        if self.augment is not None:  # each side its own shifts, as Dopamine's DrQ
            obs, next_obs = random_shift(obs, self.augment), random_shift(next_obs, self.augment)
        with torch.no_grad(), self.autocast():
            if self.noise is not None:
                self.q_target.sample_noise(self.noise)
            next_out = self.q_target_fn(next_obs).float()
            if c.double_dqn:  # the online network picks the action, the target network values it
                if self.noise is not None:
                    self.q.sample_noise(self.noise)
                best = self.q_values(self.q_fn(next_obs).float()).argmax(dim=1)
            else:
                best = self.q_values(next_out).argmax(dim=1)
            chosen = next_out[rows, best]
            if c.distributional == "c51":
                target = project_distribution(batch.rewards, bootstrap, torch.softmax(chosen, dim=-1), self.support)
            elif c.distributional == "qr":
                target = batch.rewards.unsqueeze(1) + bootstrap.unsqueeze(1) * chosen
            else:
                target = batch.rewards + bootstrap * chosen
        if self.noise is not None:
            self.q.sample_noise(self.noise)
        with self.autocast():
            taken = self.q_fn(obs).float()[rows, batch.actions]
        if c.distributional == "c51":
            log_probs = torch.log_softmax(taken, dim=-1)
            loss = -(target * log_probs).sum(-1)
            return loss, (log_probs.detach().exp() * self.support).sum(-1), loss.detach()
        if c.distributional == "qr":
            loss = quantile_huber_loss_sorted(taken, target) if self.compute.fast_path == "auto" else \
                quantile_huber_loss(taken, target)
            return loss, taken.detach().mean(-1), loss.detach()
        loss = F.smooth_l1_loss(taken, target, reduction="none") if c.loss == "huber" else \
            F.mse_loss(taken, target, reduction="none")
        return loss, taken.detach(), (taken.detach() - target).abs()

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
            **({} if self.noise is None else {"noise": self.noise.get_state()}),
            **({} if self.augment is None else {"augment": self.augment.get_state()}),
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
        if self.noise is not None:
            self.noise.set_state(state["noise"])
        if self.augment is not None:
            self.augment.set_state(state["augment"])
