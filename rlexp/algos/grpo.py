"""GRPO (Shao et al. 2024): no critic. Each answer's advantage is its score against the other
answers to the same prompt (``algo.samples_per_prompt`` of them), the same at each of its
tokens; the loss is PPO's clipped surrogate plus ``kl_coef`` times the per-token KL to the
reference (k3 by default, as in the paper), not a penalty in the reward."""

from __future__ import annotations

import torch

from rlexp.algos.lm_rl import LanguageModelRL, Minibatch, Rollout
from rlexp.algos.ppo import clipped_surrogate_loss
from rlexp.lm.rlhf import group_advantages, kl_per_token


class GRPO(LanguageModelRL):
    def advantages(self, rollout: Rollout, kl_coef: float) -> tuple[torch.Tensor, None]:
        return group_advantages(rollout.scores, self.cfg.samples_per_prompt)[:, None] * rollout.mask, None

    def loss(self, batch: Minibatch, kl_coef: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        m = batch.mask
        ratio = (batch.logprobs - batch.old_logprobs).exp()
        policy = clipped_surrogate_loss(batch.advantages[m], ratio[m], self.cfg.clip_coef)
        kl = kl_per_token(batch.logprobs, batch.ref_logprobs, self.cfg.kl_estimator)[m].mean()
        return policy + kl_coef * kl, {"loss/policy": policy, "loss/kl": kl}
