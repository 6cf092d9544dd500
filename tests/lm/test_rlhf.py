"""RLHF's math: the Bradley-Terry loss, DPO's losses, KL estimators, token rewards, advantages
(GAE through rlexp's compute_gae, GRPO's groups) and the adaptive KL coefficient."""

import math

import pytest
import torch

from rlexp.lm.rlhf import (
    AdaptiveKLController,
    bradley_terry_loss,
    dpo_loss,
    group_advantages,
    kl_per_token,
    token_advantages,
    token_rewards,
)


def test_bradley_terry_loss_and_accuracy():
    chosen, rejected = torch.tensor([2.0, 0.0, 1.0]), torch.tensor([0.0, 1.0, 1.0])
    loss, acc = bradley_terry_loss(chosen, rejected)
    expected = -sum(math.log(1 / (1 + math.exp(-m))) for m in (2.0, -1.0, 0.0)) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-6) and acc.item() == pytest.approx(1 / 3)


def test_both_estimators_are_zero_for_the_reference_itself_and_estimate_the_kl():
    logp = torch.log_softmax(torch.randn(5, 7), dim=-1)
    for estimator in ("k1", "k3"):
        assert torch.equal(kl_per_token(logp, logp, estimator), torch.zeros_like(logp))  # the first RL update: KL 0
    gen = torch.Generator().manual_seed(0)
    p, q = torch.tensor([0.6, 0.3, 0.1]), torch.tensor([0.3, 0.3, 0.4])
    true_kl = float((p * (p / q).log()).sum())
    tokens = torch.multinomial(p, 200_000, replacement=True, generator=gen)
    k1 = kl_per_token(p.log()[tokens], q.log()[tokens], "k1")
    k3 = kl_per_token(p.log()[tokens], q.log()[tokens], "k3")
    assert k1.mean().item() == pytest.approx(true_kl, abs=0.01) and k3.mean().item() == pytest.approx(true_kl, abs=0.01)
    assert (k3 >= 0).all() and (k1 < 0).any()  # k3 never negative per token; k1 can be
    with pytest.raises(ValueError, match="choose one of k1, k3"):
        kl_per_token(k1, k1, "k2")


def test_token_rewards_put_the_score_on_the_last_answer_token():
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    kl = torch.full((2, 3), 0.5)
    rewards = token_rewards(torch.tensor([1.0, -2.0]), kl, mask, kl_coef=0.1)
    assert torch.allclose(rewards, torch.tensor([[-0.05, -0.05, 0.95], [-2.05, 0.0, 0.0]]))


def test_token_advantages_are_gae_per_answer_with_nothing_from_padding():
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.5, -1.0, 7.0]])  # the 7 is padding: never counted
    values = torch.tensor([[0.2, 0.4, 0.6], [0.1, 0.3, 9.0]])
    gamma, lam = 0.9, 0.8
    adv, returns = token_advantages(rewards, values, mask, gamma, lam)
    # by hand, the second answer: delta_1 = -1 - 0.3, delta_0 = 0.5 + 0.9 * 0.3 - 0.1
    d1 = -1.0 - 0.3
    d0 = 0.5 + gamma * 0.3 - 0.1
    assert returns[1, 1].item() == pytest.approx(d1 + 0.3) and returns[1, 0].item() == pytest.approx(
        d0 + gamma * lam * d1 + 0.1)
    assert returns[1, 2] == 0 and adv[1, 2] == 0
    real = adv[mask.bool()]
    assert real.mean().abs() < 1e-6 and real.std().item() == pytest.approx(1.0, abs=1e-4)  # whitened


def test_group_advantages_compare_answers_to_the_same_prompt():
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.5, 0.5, 2.0, 2.0]), group_size=2)
    assert adv[0] > 0 > adv[1] and torch.equal(adv[2:4], torch.zeros(2)) and torch.equal(adv[4:], torch.zeros(2))


def test_the_adaptive_coefficient_follows_the_kl_within_its_clip():
    ctl = AdaptiveKLController(0.1, target=6.0, horizon=1000)
    assert ctl.update(kl=12.0, n=100) == pytest.approx(0.1 * (1 + 0.2 * 0.1))  # error clipped at +0.2
    before = ctl.coef
    assert ctl.update(kl=3.0, n=100) == pytest.approx(before * (1 - 0.2 * 0.1))  # clipped at -0.2
    assert ctl.update(kl=6.6, n=100) == pytest.approx(before * (1 - 0.02) * (1 + 0.1 * 0.1))  # within the clip
    again = AdaptiveKLController(1.0, 6.0, 1000)
    again.load_state_dict(ctl.state_dict())
    assert again.coef == ctl.coef


def test_dpo_losses_follow_their_papers_formulas_and_log_trls_implicit_rewards():
    pc, pr = torch.tensor([-1.0, -4.0, -2.0]), torch.tensor([-3.0, -1.0, -2.0])
    rc, rr = torch.tensor([-2.0, -3.0, -2.0]), torch.tensor([-2.0, -2.0, -1.0])
    beta = 0.5
    h = [(-1 + 3) - (-2 + 2), (-4 + 1) - (-3 + 2), (-2 + 2) - (-2 + 1)]  # [2, -2, 1]
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    loss, rewards = dpo_loss(pc, pr, rc, rr, beta)
    assert loss.tolist() == pytest.approx([-math.log(sigmoid(beta * x)) for x in h])
    assert rewards["chosen"].tolist() == pytest.approx([0.5, -0.5, 0.0])  # beta (log pi - log ref) of y_w
    assert rewards["rejected"].tolist() == pytest.approx([-0.5, 0.5, -0.5])
    assert rewards["margins"].tolist() == pytest.approx([1.0, -1.0, 0.5])
    assert rewards["accuracies"].tolist() == [1.0, 0.0, 1.0]
    smoothed, _ = dpo_loss(pc, pr, rc, rr, beta, label_smoothing=0.1)  # conservative DPO
    assert smoothed.tolist() == pytest.approx(
        [-0.9 * math.log(sigmoid(beta * x)) - 0.1 * math.log(sigmoid(-beta * x)) for x in h])
    ipo, _ = dpo_loss(pc, pr, rc, rr, beta, loss="ipo")
    assert ipo.tolist() == pytest.approx([(x - 1 / (2 * beta)) ** 2 for x in h])
    with pytest.raises(ValueError, match="choose sigmoid or ipo"):
        dpo_loss(pc, pr, rc, rr, beta, loss="hinge")
    # at the start the policy is the reference: every pair's loss is log 2, its rewards 0
    start, r0 = dpo_loss(pc, pr, pc, pr, beta)
    assert torch.allclose(start, torch.full((3,), math.log(2.0))) and not r0["accuracies"].any()
