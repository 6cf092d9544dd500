"""RLOO (Ahmadian et al. 2024, "Back to Basics: Revisiting REINFORCE Style Optimization for
Learning from Human Feedback in LLMs"), as TRL's and OpenRLHF's RLOO trainers run it: no
critic. Each answer's reward is the reward model's score less ``kl_coef`` times its summed
per-token KL to the reference; its advantage is that reward minus the mean reward of the other
``samples_per_prompt - 1`` answers to the same prompt, the same at each of its tokens; the
loss is PPO's clipped surrogate (rlexp's function)."""

from __future__ import annotations

import torch

from rlexp.algos.lm_rl import LanguageModelRL, Minibatch, Rollout
from rlexp.algos.ppo import clipped_surrogate_loss
from rlexp.lm.rlhf import kl_per_token, leave_one_out_advantages, masked_whiten


class RLOO(LanguageModelRL):
    def advantages(self, rollout: Rollout, kl_coef: float) -> tuple[torch.Tensor, None]:
        kl = (kl_per_token(rollout.logprobs, rollout.ref_logprobs, self.cfg.kl_estimator) * rollout.mask).sum(dim=1)
        advantages = leave_one_out_advantages(rollout.scores - kl_coef * kl, self.cfg.samples_per_prompt)
        per_token = advantages[:, None] * rollout.mask
        return (masked_whiten(per_token, rollout.mask) if self.cfg.whiten_advantages else per_token), None

    def loss(self, batch: Minibatch, kl_coef: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        m = batch.mask
        ratio = (batch.logprobs - batch.old_logprobs).exp()
        policy = clipped_surrogate_loss(batch.advantages[m], ratio[m], self.cfg.clip_coef)
        return policy, {"loss/policy": policy}
