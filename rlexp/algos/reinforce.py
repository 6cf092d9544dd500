"""REINFORCE (Williams 1992): theta <- theta + alpha * sum_t (G_t - b(s_t)) * grad log pi(a_t | s_t).

Reads top to bottom: act by sampling the policy, keep each env's episode until it ends,
compute the discounted returns G_t after the episode, and take one gradient step per
``episodes_per_update`` finished episodes, with an optional baseline (the batch's mean
return or a learned state value) and return normalization.

With several parallel envs, an episode that straddles an update was partly collected by
the previous policy (as in most vectorized implementations); with one env it is exact.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rlexp.algos.actor_critic import ActorCriticAlgorithm
from rlexp.algos.common import normalize
from rlexp.algos.flat_adam import FlatAdam
from rlexp.config import ReinforceConfig


def discounted_returns(rewards: np.ndarray, gamma: float, bootstrap: float = 0.0) -> np.ndarray:
    """G_t = r_t + gamma * G_{t+1}, with G_T = ``bootstrap`` (0 for a terminated episode)."""
    returns = np.zeros(len(rewards), dtype=np.float64)
    running = bootstrap
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns.astype(np.float32)


class Reinforce(ActorCriticAlgorithm):
    """Monte-Carlo policy gradient over complete episodes."""

    cfg: ReinforceConfig

    def __init__(self, cfg: ReinforceConfig, obs_space, action_space, network, device, seed, num_envs, compute=None,
                 total_steps=None, env_model=None):
        super().__init__(cfg, obs_space, action_space, network, device, seed, num_envs, compute, total_steps, env_model)
        self.optimizer = FlatAdam(self.flat_params, lr=cfg.lr, eps=cfg.optimizer_eps)
        self._running: list[list[tuple[np.ndarray, np.ndarray, float]]] = [[] for _ in range(num_envs)]  # per env
        self._pending: np.ndarray | None = None  # act()'s raw actions (the Gaussian draw before clipping)
        self._finished: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (obs, actions, returns)

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        _, action, _, _, env_action = self.sample(obs)
        self._pending = action.cpu().numpy()
        return env_action

    def observe(self, obs, actions, rewards, next_obs, terminated, truncated, step, episode_end=None):
        c = self.cfg
        if self._pending is None:
            raise RuntimeError("Reinforce.observe() needs the act() call of the same step first")
        raw_actions, self._pending = self._pending, None
        if episode_end is None:
            episode_end = np.logical_or(terminated, truncated)
        for i in range(len(actions)):
            self._running[i].append((obs[i], raw_actions[i], float(rewards[i])))
            if not episode_end[i]:
                continue
            episode, self._running[i] = self._running[i], []
            bootstrap = 0.0
            if not terminated[i] and c.baseline == "value":
                # truncation is not termination: the learned value stands in for the rest
                with torch.no_grad():
                    bootstrap = float(self.value(torch.as_tensor(next_obs[i : i + 1], device=self.device)))
            ep_obs = np.stack([o for o, _, _ in episode])
            ep_actions = np.stack([a for _, a, _ in episode])
            ep_returns = discounted_returns(np.array([r for _, _, r in episode]), c.gamma, bootstrap)
            self._finished.append((ep_obs, ep_actions, ep_returns))
        if len(self._finished) < c.episodes_per_update:
            return {}
        return self.update()

    def update(self) -> dict[str, float]:
        """One policy-gradient step on the finished episodes."""
        c = self.cfg
        obs = torch.as_tensor(np.concatenate([e[0] for e in self._finished]), device=self.device)
        actions = torch.as_tensor(np.concatenate([e[1] for e in self._finished]), device=self.device)
        returns = torch.as_tensor(np.concatenate([e[2] for e in self._finished]), device=self.device)
        self._finished = []
        out, values = self.forward(obs)
        logprob, entropy = self.net.head.log_prob_entropy(out, actions)
        if c.baseline == "value":
            advantages = returns - values.detach()
        elif c.baseline == "mean":
            advantages = returns - returns.mean()
        else:
            advantages = returns
        if c.normalize_returns:
            advantages = normalize(advantages)
        policy_loss = -(advantages * logprob).mean()
        entropy = entropy.mean()
        loss = policy_loss - c.ent_coef * entropy
        value_loss = F.mse_loss(values, returns) if c.baseline == "value" else None
        if value_loss is not None:
            loss = loss + c.vf_coef * value_loss
        self.optimizer_step(loss)
        metrics = {"loss/policy": policy_loss.item(), "loss/entropy": entropy.item(),
                   "train/updates": float(self.updates)}
        if value_loss is not None:
            metrics["loss/value"] = value_loss.item()
        return metrics

    # ------------------------------------------------------------------ state

    def buffer_state(self) -> dict:
        """Each env's episode so far and the finished episodes not yet learned from, as tensors."""

        def running(episode):
            if not episode:
                return None
            return (torch.from_numpy(np.stack([o for o, _, _ in episode])),
                    torch.from_numpy(np.stack([a for _, a, _ in episode])),
                    torch.tensor([r for _, _, r in episode], dtype=torch.float64))

        return {"running": [running(e) for e in self._running],
                "finished": [tuple(torch.from_numpy(np.ascontiguousarray(x)) for x in e) for e in self._finished]}

    def load_buffer_state(self, state: dict) -> None:
        if len(state["running"]) != len(self._running):
            raise ValueError(f"state holds {len(state['running'])} envs' episodes, this run has {len(self._running)}")
        self._running = [[] if e is None else [(o, a, float(r)) for o, a, r in zip(e[0].numpy(), e[1].numpy(), e[2].tolist())]
                         for e in state["running"]]
        self._finished = [tuple(x.numpy() for x in e) for e in state["finished"]]
