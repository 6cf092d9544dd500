"""PPO on a language model's answers (Ziegler et al. 2019; Ouyang et al. 2022): the token-level
MDP's rewards (``-kl_coef * KL`` at every answer token, the reward model's score at the last),
a value head on the policy's last hidden state, GAE (rlexp's :func:`compute_gae`, as gym PPO),
whitened advantages, and PPO's clipped surrogate plus a clipped value loss."""

from __future__ import annotations

import torch

from rlexp.algos.lm_rl import LanguageModelRL, Minibatch, Rollout
from rlexp.algos.ppo import clipped_surrogate_loss
from rlexp.config import RLHFPPOConfig
from rlexp.lm.rlhf import kl_per_token, token_advantages, token_rewards


class RLHFPPO(LanguageModelRL):
    def __init__(self, cfg: RLHFPPOConfig, hidden_size: int, device: torch.device):
        super().__init__(cfg, hidden_size, device)
        self.value_head = torch.nn.Linear(hidden_size, 1).to(device)
        torch.nn.init.zeros_(self.value_head.weight)  # values start at 0: the first updates move the policy only
        torch.nn.init.zeros_(self.value_head.bias)

    def advantages(self, rollout: Rollout, kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
        c, mask = self.cfg, rollout.mask
        kl = kl_per_token(rollout.logprobs, rollout.ref_logprobs, c.kl_estimator)
        rewards = token_rewards(rollout.scores, kl, mask, kl_coef)
        return token_advantages(rewards, rollout.values * mask, mask, c.gamma, c.gae_lambda)

    def loss(self, batch: Minibatch, kl_coef: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        m, clip = batch.mask, self.cfg.value_clip
        ratio = (batch.logprobs - batch.old_logprobs).exp()
        policy = clipped_surrogate_loss(batch.advantages[m], ratio[m], self.cfg.clip_coef)
        values, old, returns = batch.values[m], batch.old_values[m], batch.returns[m]
        value = (values - returns) ** 2
        if clip is not None:  # as PPO2: the value moves at most `clip` from the rollout's, pessimistically
            value = torch.max(value, (old + (values - old).clamp(-clip, clip) - returns) ** 2)
        value = 0.5 * value.mean()
        return policy + self.cfg.vf_coef * value, {"loss/policy": policy, "loss/value": value}
