"""The RL algorithms on language models (rlhf_ppo, grpo, rloo) behind their contract: advantages
from a rollout, the loss of a minibatch, the value head's state."""

from __future__ import annotations

import torch

from rlexp.algos.grpo import GRPO
from rlexp.algos.lm_rl import Minibatch, Rollout
from rlexp.algos.rlhf_ppo import RLHFPPO
from rlexp.algos.rloo import RLOO
from rlexp.config import GRPOConfig, RLHFPPOConfig, RLOOConfig
from rlexp.errors import ConfigError
from rlexp.lm.rlhf import group_advantages, kl_per_token, leave_one_out_advantages, token_advantages, token_rewards

MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.float32)


def _rollout(values: bool) -> Rollout:
    g = torch.Generator().manual_seed(0)
    logprobs = -torch.rand(4, 4, generator=g) * MASK
    ref = -torch.rand(4, 4, generator=g) * MASK
    return Rollout(MASK, logprobs, ref, torch.randn(4, 4, generator=g) if values else None,
                   torch.tensor([1.0, -0.5, 2.0, 0.0]))


def test_rlhf_ppo_advantages_are_gae_on_the_kl_penalised_rewards_and_its_value_head_starts_at_zero():
    cfg = RLHFPPOConfig(kl_estimator="k3", gamma=0.9, gae_lambda=0.8)
    algo = RLHFPPO(cfg, hidden_size=8, device=torch.device("cpu"))
    assert algo.value_head(torch.randn(3, 8)).abs().max() == 0 and len(algo.parameters()) == 2
    r = _rollout(values=True)
    advantages, returns = algo.advantages(r, kl_coef=0.3)
    rewards = token_rewards(r.scores, kl_per_token(r.logprobs, r.ref_logprobs, "k3"), MASK, 0.3)
    want_adv, want_ret = token_advantages(rewards, r.values * MASK, MASK, 0.9, 0.8)
    assert torch.equal(advantages, want_adv) and torch.equal(returns, want_ret)
    assert (advantages[MASK == 0] == 0).all()


def test_rlhf_ppo_loss_is_the_clipped_surrogate_plus_the_clipped_value_loss():
    cfg = RLHFPPOConfig(clip_coef=0.2, vf_coef=0.5, value_clip=0.1)
    algo = RLHFPPO(cfg, hidden_size=4, device=torch.device("cpu"))
    m = MASK.bool()
    old = torch.zeros(4, 4)
    new = torch.full((4, 4), 0.5)  # ratio e^0.5 = 1.65: clipped at 1.2 where the advantage is positive
    adv = torch.where(torch.arange(4)[:, None] % 2 == 0, 1.0, -1.0).expand(4, 4)
    values, old_values, returns = torch.full((4, 4), 1.0), torch.zeros(4, 4), torch.full((4, 4), 2.0)
    loss, parts = algo.loss(Minibatch(m, new, old, old, values, old_values, adv, returns), kl_coef=0.1)
    ratio = torch.exp(torch.tensor(0.5))
    pos, neg = (adv[m] > 0).float().mean(), (adv[m] < 0).float().mean()
    want_policy = -(1.2 * pos) + ratio * neg  # max(-A r, -A clip(r)): -1.2 for A=+1, +r for A=-1
    assert torch.isclose(parts["loss/policy"], want_policy)
    # the value moved 1.0 from the rollout's 0: clipped to 0.1, the worse (larger) error is kept
    assert torch.isclose(parts["loss/value"], torch.tensor(0.5 * (2.0 - 0.1) ** 2))
    assert torch.isclose(loss, want_policy + 0.5 * parts["loss/value"]) and set(parts) == {"loss/policy", "loss/value"}
    state = algo.state_dict()
    other = RLHFPPO(cfg, hidden_size=4, device=torch.device("cpu"))
    with torch.no_grad():
        algo.value_head.weight.add_(1.0)
    other.load_state_dict(algo.state_dict())
    assert torch.equal(other.value_head.weight, algo.value_head.weight) and set(state) == {"weight", "bias"}


def test_grpo_advantages_compare_answers_to_one_prompt_and_its_loss_carries_the_kl():
    cfg = GRPOConfig(samples_per_prompt=2, kl_estimator="k3", clip_coef=0.2)
    algo = GRPO(cfg, hidden_size=8, device=torch.device("cpu"))
    assert algo.value_head is None and algo.parameters() == [] and algo.state_dict() == {}
    r = _rollout(values=False)
    advantages, returns = algo.advantages(r, kl_coef=0.05)
    assert returns is None
    assert torch.equal(advantages, group_advantages(r.scores, 2)[:, None] * MASK)
    assert advantages[0, 0] > 0 > advantages[1, 0]  # 1.0 beat -0.5 for the first prompt
    m = MASK.bool()
    loss, parts = algo.loss(Minibatch(m, r.logprobs, r.logprobs, r.ref_logprobs, None, None, advantages, None),
                            kl_coef=0.05)
    kl = kl_per_token(r.logprobs, r.ref_logprobs, "k3")[m].mean()
    assert torch.isclose(parts["loss/policy"], -advantages[m].mean())  # ratio 1: the surrogate is -mean(A)
    assert torch.isclose(parts["loss/kl"], kl) and torch.isclose(loss, -advantages[m].mean() + 0.05 * kl)


def test_leave_one_out_baseline_is_the_mean_of_the_other_answers():
    rewards = torch.tensor([1.0, 2.0, 6.0, -1.0, 0.0, 1.0])
    want = torch.tensor([1 - 4.0, 2 - 3.5, 6 - 1.5, -1 - 0.5, 0.0, 1 - (-0.5)])
    assert torch.allclose(leave_one_out_advantages(rewards, 3), want)
    assert torch.allclose(leave_one_out_advantages(rewards, 3).view(2, 3).sum(1), torch.zeros(2))  # centred per prompt


def test_rloo_advantages_are_leave_one_out_over_kl_penalised_rewards_and_its_loss_the_clipped_surrogate():
    cfg = RLOOConfig(samples_per_prompt=2, clip_coef=0.2)
    algo = RLOO(cfg, hidden_size=8, device=torch.device("cpu"))
    assert algo.value_head is None and algo.parameters() == []
    r = _rollout(values=False)
    advantages, returns = algo.advantages(r, kl_coef=0.1)
    assert returns is None
    kl = (kl_per_token(r.logprobs, r.ref_logprobs, "k1") * MASK).sum(1)
    rewards = r.scores - 0.1 * kl
    for i, j in ((0, 1), (1, 0), (2, 3), (3, 2)):  # two answers per prompt: the baseline is the other's reward
        assert torch.allclose(advantages[i], (rewards[i] - rewards[j]) * MASK[i])
    m = MASK.bool()
    loss, parts = algo.loss(Minibatch(m, r.logprobs, r.logprobs, r.ref_logprobs, None, None, advantages, None),
                            kl_coef=0.1)
    assert torch.isclose(loss, -advantages[m].mean()) and set(parts) == {"loss/policy"}  # ratio 1: -mean(A)
    whitened, _ = RLOO(RLOOConfig(samples_per_prompt=2, whiten_advantages=True), 8, torch.device("cpu")).advantages(
        r, kl_coef=0.1)
    assert torch.isclose(whitened[m].mean(), torch.tensor(0.0), atol=1e-6)


def test_rloo_needs_two_answers_per_prompt():
    import pytest

    with pytest.raises(ConfigError, match="algo.samples_per_prompt must be >= 2 for rloo"):
        RLOOConfig(samples_per_prompt=1)
