"""Proximal Policy Optimization (Schulman et al. 2017): clipped surrogate, GAE, minibatch epochs.

Reads top to bottom: the rollout comes from ``OnPolicy``; each update runs several epochs
of shuffled minibatches with the clipped objective, an optionally clipped value loss and an
entropy bonus.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from rlexp.algos.common import explained_variance, normalize
from rlexp.algos.flat_adam import FlatAdam
from rlexp.algos.onpolicy import OnPolicy
from rlexp.config import PPOConfig
from rlexp.errors import ConfigError
from rlexp.networks import MLP, CategoricalHead


def clipped_surrogate_loss(advantages: torch.Tensor, ratio: torch.Tensor, clip: float) -> torch.Tensor:
    """PPO's pessimistic objective, as a loss: mean of max(-A r, -A clip(r, 1-eps, 1+eps)).

    Outside the clip range on the side the advantage favours, the clipped term wins and
    the gradient with respect to the ratio is zero.
    """
    return torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip, 1 + clip)).mean()


def ppo_losses(new_logprob: torch.Tensor, entropy: torch.Tensor, value: torch.Tensor, old_logprob: torch.Tensor,
               adv: torch.Tensor, returns: torch.Tensor, old_values: torch.Tensor, clip: float,
               clip_value_loss: bool) -> tuple[torch.Tensor, ...]:
    """PPO's loss terms on a minibatch, from the policy's log-probability of the taken actions,
    its entropies and the values: (policy loss, value loss, mean entropy, log-ratio, ratio).
    The reference: the hand-written gradient (``PPO._manual_backward``) is held to these."""
    logratio = new_logprob - old_logprob
    ratio = logratio.exp()
    policy_loss = clipped_surrogate_loss(adv, ratio, clip)
    if clip_value_loss:  # as PPO2: the value moves at most `clip` from the rollout's, pessimistically
        clipped = old_values + (value - old_values).clamp(-clip, clip)
        value_loss = 0.5 * torch.max((value - returns) ** 2, (clipped - returns) ** 2).mean()
    else:
        value_loss = 0.5 * F.mse_loss(value, returns)
    return policy_loss, value_loss, entropy.mean(), logratio, ratio


@torch.no_grad()
def approx_kl(ratio: torch.Tensor, logratio: torch.Tensor) -> float:
    """KL(old || new) by the low-variance estimator mean((r - 1) - log r) (Schulman)."""
    return ((ratio - 1) - logratio).mean().item()


class PPO(OnPolicy):
    """On-policy actor-critic with the clipped surrogate objective."""

    cfg: PPOConfig

    def __init__(self, cfg: PPOConfig, obs_space, action_space, network, device, seed, num_envs, compute=None,
                 total_steps=None, env_model=None):
        if cfg.rollout_steps * num_envs < cfg.num_minibatches:
            raise ConfigError(
                f"algo.num_minibatches={cfg.num_minibatches} exceeds the rollout of "
                f"{cfg.rollout_steps * num_envs} transitions (algo.rollout_steps x env.num_envs)"
            )
        super().__init__(cfg, obs_space, action_space, network, device, seed, num_envs, compute, total_steps, env_model)
        self.optimizer = FlatAdam(self.flat_params, lr=cfg.lr, eps=cfg.optimizer_eps)
        self.generator = torch.Generator().manual_seed(seed)  # minibatch shuffles
        # the fast path: the loss's gradient by hand on separate MLP actor and critic with
        # discrete actions (the classic-control default), autograd's gradient up to float
        # rounding in fewer operations; device.fast_path=off, everything else, and autocast or
        # compiled passes go through autograd
        net = self.net
        self.manual_grad = (net.trunk is None and isinstance(net.head, CategoricalHead) and self.fast_path_allowed
                            and all(isinstance(m, MLP) and m.manual_grad for m in (net.actor, net.critic)))

    def update(self, advantages: torch.Tensor, returns: torch.Tensor, step: int) -> dict[str, float]:
        """Epochs of minibatch updates on the full rollout."""
        c = self.cfg
        left = self.progress_left(step)
        if c.anneal_lr:
            self.optimizer.param_groups[0]["lr"] = c.lr * left
        clip = c.clip_coef * left if c.anneal_clip else c.clip_coef
        r = self.rollout
        b_obs, b_actions = r.obs.flatten(0, 1), r.actions.flatten(0, 1)
        b_logprobs, b_values = r.logprobs.flatten(), r.values.flatten()
        b_adv, b_returns = advantages.flatten(), returns.flatten()
        minibatch = b_logprobs.numel() // c.num_minibatches
        # per minibatch; the KL and clip fraction are computed once at the end, from the ratios
        stats: dict[str, list[torch.Tensor]] = {k: [] for k in ("policy", "value", "entropy", "ratio", "logratio")}
        whole_adv = (normalize(b_adv) if c.norm_adv else b_adv) if c.num_minibatches == 1 else None
        for _ in range(c.update_epochs):
            for idx, adv in self._minibatches(b_adv, whole_adv, minibatch):
                if self.manual_grad:
                    policy_loss, value_loss, entropy, logratio, ratio = self._manual_backward(
                        b_obs[idx], b_actions[idx], b_logprobs[idx], adv, b_returns[idx], b_values[idx], clip)
                    self.apply_gradient()
                else:  # the reference
                    out, value = self.forward(b_obs[idx])
                    new_logprob, entropies = self.net.head.log_prob_entropy(out, b_actions[idx])
                    policy_loss, value_loss, entropy, logratio, ratio = ppo_losses(
                        new_logprob, entropies, value, b_logprobs[idx], adv, b_returns[idx], b_values[idx], clip,
                        c.clip_value_loss)
                    self.optimizer_step(policy_loss - c.ent_coef * entropy + c.vf_coef * value_loss)
                for key, v in (("policy", policy_loss), ("value", value_loss), ("entropy", entropy), ("ratio", ratio),
                               ("logratio", logratio)):
                    stats[key].append(v.detach())
            if c.target_kl is not None and approx_kl(ratio, logratio) > c.target_kl:
                break
        mean = {k: torch.stack(stats[k]).mean().item() for k in ("policy", "value", "entropy")}
        ratios, logratios = torch.stack(stats["ratio"]), torch.stack(stats["logratio"])
        return {
            "loss/policy": mean["policy"], "loss/value": mean["value"], "loss/entropy": mean["entropy"],
            "train/approx_kl": approx_kl(ratios, logratios),
            "train/clipfrac": ((ratios - 1).abs() > clip).float().mean().item(),
            "train/explained_variance": explained_variance(b_values, b_returns),
            "train/updates": float(self.updates),
        }

    def _minibatches(self, b_adv: torch.Tensor, whole_adv: torch.Tensor | None, size: int):
        """One epoch's minibatches as (index, advantages) pairs. With one minibatch (``whole_adv``
        given) it is the whole rollout in order: its mean does not depend on the order, so no
        shuffle and no gather. Otherwise a fresh shuffle cut into ``size``-sample pieces."""
        if whole_adv is not None:
            yield slice(None), whole_adv
            return
        order = torch.randperm(b_adv.numel(), generator=self.generator).to(self.device)
        for start in range(0, size * self.cfg.num_minibatches, size):
            idx = order[start : start + size]
            yield idx, normalize(b_adv[idx]) if self.cfg.norm_adv else b_adv[idx]

    @torch.no_grad()
    def _manual_backward(self, obs, actions, old_logprob, adv, returns, old_values, clip):
        """The fast path: :func:`ppo_losses` on a minibatch, its gradient written into
        ``flat_params.grad`` by hand (categorical policy, separate MLP actor and critic).
        Returns what :func:`ppo_losses` returns. ``tests/algos/test_ppo.py`` holds it to
        autograd's numbers over random settings."""
        c, net = self.cfg, self.net
        x = net.features(obs)
        logits, actor_inputs = net.actor.forward_saving(x)
        value_out, critic_inputs = net.critic.forward_saving(x)
        value = value_out.squeeze(-1)
        n = value.numel()
        log_probs = torch.log_softmax(logits, dim=-1)
        probs = log_probs.exp()
        entropy_each = -(probs * log_probs).sum(dim=-1)
        index = actions.unsqueeze(-1)
        losses = ppo_losses(log_probs.gather(-1, index).squeeze(-1), entropy_each, value, old_logprob, adv, returns,
                            old_values, clip, c.clip_value_loss)
        ratio = losses[-1]
        unclipped, clipped = -adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)
        # d(policy loss)/d(ratio) is the unclipped term's slope where that term is the larger, or
        # where the ratio is inside the clip range (both terms equal); zero elsewhere
        live = (unclipped > clipped) | ((ratio >= 1 - clip) & (ratio <= 1 + clip))
        grad_logprob = (-adv / n) * live * ratio  # d/d(log pi(a)) = d/d(ratio) * ratio
        grad_logits = grad_logprob.unsqueeze(-1) * -probs  # d log pi(a) / d logits = onehot(a) - pi
        grad_logits.scatter_add_(-1, index, grad_logprob.unsqueeze(-1))
        if c.ent_coef:  # -ent_coef * mean entropy: d H / d logits = -pi (log pi + H)
            grad_logits += (c.ent_coef / n) * probs * (log_probs + entropy_each.unsqueeze(-1))
        err = value - returns
        if c.clip_value_loss:
            clipped_err = old_values + (value - old_values).clamp(-clip, clip) - returns
            sq, clipped_sq = err.square(), clipped_err.square()
            tie = 0.5 * (sq == clipped_sq)  # torch.max splits the gradient evenly on ties
            inside = ((value - old_values).abs() <= clip)
            grad_value = (c.vf_coef / n) * (((sq > clipped_sq) + tie) * err
                                            + ((clipped_sq > sq) + tie) * inside * clipped_err)
        else:
            grad_value = (c.vf_coef / n) * err
        net.actor.backward_into_grad(actor_inputs, logits, grad_logits)
        net.critic.backward_into_grad(critic_inputs, value_out, grad_value.unsqueeze(-1))
        return losses

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state["generator"])
