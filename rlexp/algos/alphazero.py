"""AlphaZero's learner (Silver et al. 2017/2018): a policy-value network trained on self-play.

Reads top to bottom: positions arrive with the search's policy and the game's final outcome
(for the player to move) into a replay window; each training step samples a minibatch and
minimizes cross-entropy between the network's policy and the search's, plus the squared
error of the value against the outcome, with L2 regularization (Adam's weight decay). The
self-play that produces the positions is the trainer's (``rlexp.trainers.selfplay``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rlexp.algos.base import DeviceSettings, first_non_finite
from rlexp.algos.common import clip_grad_norm_
from rlexp.config import AlphaZeroConfig, DeviceConfig, NetworkConfig
from rlexp.games.openspiel import GameSpec
from rlexp.networks import flatten_parameters
from rlexp.networks.policy_value import build_policy_value


def inference_copy(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` (in eval mode) for the search, each batch norm folded into the
    convolution before it: the same function, ~40% less time per call for the residual tower on
    CPU (torch.fx's conv-bn fusion). Networks without batch norm are used as they are."""
    if not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()):
        return net
    from torch.fx.experimental.optimization import fuse

    return fuse(net.eval())


class ReplayWindow:
    """The newest ``capacity`` positions: observation, search policy, outcome."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], num_actions: int):
        self.capacity = capacity
        self.obs = np.zeros((capacity, *obs_shape), dtype=np.float32)
        self.policy = np.zeros((capacity, num_actions), dtype=np.float32)
        self.outcome = np.zeros(capacity, dtype=np.float32)
        self.size = 0
        self.next = 0  # the slot the next position goes to

    def add(self, obs: np.ndarray, policy: np.ndarray, outcome: np.ndarray) -> None:
        n = len(obs)
        idx = (self.next + np.arange(n)) % self.capacity  # the oldest are overwritten
        self.obs[idx], self.policy[idx], self.outcome[idx] = obs, policy, outcome
        self.next = int((self.next + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def state_dict(self) -> dict[str, Any]:
        n = self.size
        return {"obs": torch.from_numpy(self.obs[:n].copy()), "policy": torch.from_numpy(self.policy[:n].copy()),
                "outcome": torch.from_numpy(self.outcome[:n].copy()), "size": n, "next": self.next}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = int(state["size"])
        if n > self.capacity or tuple(state["obs"].shape[1:]) != self.obs.shape[1:]:
            raise ValueError(f"the saved window holds {n} positions of shape {tuple(state['obs'].shape[1:])}; "
                             f"this one holds {self.capacity} of {self.obs.shape[1:]}")
        self.obs[:n], self.policy[:n], self.outcome[:n] = state["obs"], state["policy"], state["outcome"]
        self.size, self.next = n, int(state["next"])


class AlphaZero(DeviceSettings):
    """The network, its optimizer and the replay window; ``evaluate`` serves the search."""

    DEVICE_SETTINGS = ("amp", "compile")

    def __init__(self, cfg: AlphaZeroConfig, spec: GameSpec, network: NetworkConfig, device: torch.device, seed: int,
                 compute: DeviceConfig | None = None):
        self.cfg, self.spec, self.device = cfg, spec, device
        self.compute = compute or DeviceConfig()
        self.net = build_policy_value(network, spec.obs_shape, spec.num_actions).to(device).eval()
        self.flat_params = flatten_parameters(self.net)  # one flat tensor: Adam and the clip in a few kernels
        self.net_fn = self.compiled(self.net)
        self._inference: torch.nn.Module | None = None  # the search's copy, rebuilt after the weights change
        self.optimizer = torch.optim.Adam([self.flat_params], lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.window = ReplayWindow(cfg.replay_window_positions, spec.obs_shape, spec.num_actions)
        self.rng = np.random.default_rng([seed, 2])  # minibatch draws
        self.updates = 0

    @torch.inference_mode()
    def evaluate(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(policy logits, values) of a batch of encoded positions, for the search."""
        if self._inference is None:
            self._inference = self.compiled(inference_copy(self.net))
        with self.autocast():
            logits, values = self._inference(torch.as_tensor(obs, device=self.device))
        return logits.float().cpu().numpy(), values.float().cpu().numpy()

    def add(self, obs: np.ndarray, policy: np.ndarray, outcome: np.ndarray) -> None:
        self.window.add(obs, policy, outcome)

    def train(self, num_updates: int) -> dict[str, float]:
        """``num_updates`` gradient steps on minibatches drawn uniformly from the window."""
        c, w = self.cfg, self.window
        self.net.train()
        losses = []
        for _ in range(num_updates):
            idx = self.rng.integers(w.size, size=c.batch_size)
            obs = torch.as_tensor(w.obs[idx], device=self.device)
            target = torch.as_tensor(w.policy[idx], device=self.device)
            outcome = torch.as_tensor(w.outcome[idx], device=self.device)
            with self.autocast():
                logits, value = self.net_fn(obs)
            policy_loss = -(target * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()
            value_loss = F.mse_loss(value.float(), outcome)
            self.flat_params.grad.zero_()
            (policy_loss + c.value_loss_coef * value_loss).backward()
            if c.max_grad_norm is not None:
                clip_grad_norm_(self.flat_params.grad, c.max_grad_norm)
            self.optimizer.step()
            losses.append(torch.stack([policy_loss.detach(), value_loss.detach()]))
        self.net.eval()
        self._inference = None
        self.updates += num_updates
        policy_loss, value_loss = torch.stack(losses).mean(dim=0).tolist()
        return {"loss/policy": policy_loss, "loss/value": value_loss, "train/updates": float(self.updates)}

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(), "updates": self.updates,
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self._inference = None
        if "optimizer" in state:  # evaluation and play load the network alone
            self.optimizer.load_state_dict(state["optimizer"])
            self.updates = state["updates"]
            self.rng.bit_generator.state = state["rng"]

    def buffer_state(self) -> dict[str, Any]:
        return {"window": self.window.state_dict()}

    def load_buffer_state(self, state: dict[str, Any]) -> None:
        self.window.load_state_dict(state["window"])

    def non_finite(self) -> str:
        return first_non_finite(self.state_dict())
