"""The math of RLHF's last two stages, as functions of tensors (the trainers call them).

- the reward model's Bradley-Terry loss ``-log sigmoid(r_chosen - r_rejected)``;
- DPO's loss on preference pairs (Rafailov et al. 2023), its conservative variant with label
  smoothing (Mitchell 2023) and IPO's (Azar et al. 2023), with the implicit rewards TRL logs;
- the per-token KL between the policy and the reference, ``k1`` (``log p - log p_ref``,
  unbiased, can be negative per token) or ``k3`` (``r - 1 - log r`` with ``r = p_ref / p``,
  unbiased and never negative; Schulman 2020, "Approximating KL divergence");
- the token-level MDP's rewards: ``-kl_coef * kl`` at every answer token, plus the sequence's
  score at its last token (Ziegler et al. 2019; Ouyang et al. 2022);
- the adaptive KL coefficient of Ziegler et al. 2019 (a proportional controller on the KL);
- advantages: GAE over the answer tokens with rlexp's own :func:`compute_gae` (the same
  function PPO uses on gym envs, not a copy), whitened over the real tokens; GRPO's
  group-relative advantages (Shao et al. 2024): each answer's score against the other
  answers to the same prompt; and RLOO's leave-one-out advantages (Ahmadian et al. 2024):
  each answer's reward minus the mean reward of the other answers to its prompt.

Shapes: ``(batch, tokens)`` for per-token tensors, ``mask`` 1 on answer tokens (left-aligned:
the answer's tokens first, then padding), ``(batch,)`` for per-sequence scores.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlexp.algos.onpolicy import compute_gae

KL_ESTIMATORS = ("k1", "k3")


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean ``-log sigmoid(chosen - rejected)``, accuracy: the share with ``chosen > rejected``)."""
    margin = chosen - rejected
    return -F.logsigmoid(margin).mean(), (margin > 0).float().mean()


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float, loss: str = "sigmoid",
             label_smoothing: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DPO's loss per pair, and its implicit rewards, from each answer's log-probability under
    the policy and the reference (summed over its tokens; IPO: averaged, as TRL does).

    With ``h = (log pi(y_w) - log pi(y_l)) - (log ref(y_w) - log ref(y_l))``:

    - ``sigmoid`` (Rafailov et al. 2023): ``-log sigmoid(beta h)``; with ``label_smoothing``
      ``e`` (conservative DPO: the labels are flipped with probability ``e``),
      ``-(1 - e) log sigmoid(beta h) - e log sigmoid(-beta h)``;
    - ``ipo`` (Azar et al. 2023): ``(h - 1 / (2 beta))^2``.

    Returns:
        (the loss of each pair, {chosen, rejected, margins, accuracies}: the implicit rewards
        ``beta * (log pi - log ref)`` of each answer, their difference, and whether the chosen
        one's is larger), each (pairs,).
    """
    chosen = policy_chosen - ref_chosen
    rejected = policy_rejected - ref_rejected
    h = chosen - rejected
    if loss == "sigmoid":
        per_pair = -(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)
    elif loss == "ipo":
        per_pair = (h - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"DPO loss {loss!r}: choose sigmoid or ipo")
    rewards = {"chosen": beta * chosen.detach(), "rejected": beta * rejected.detach()}
    rewards["margins"] = rewards["chosen"] - rewards["rejected"]
    rewards["accuracies"] = (rewards["chosen"] > rewards["rejected"]).float()
    return per_pair, rewards


def kl_per_token(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """The KL estimate at each sampled token (the tokens were drawn from the policy)."""
    log_ratio = logprobs - ref_logprobs  # log p / p_ref
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio  # r - 1 - log r, r = p_ref / p
    raise ValueError(f"kl estimator {estimator!r}: choose one of {', '.join(KL_ESTIMATORS)}")


def token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """``-kl_coef * kl`` on every answer token, plus each sequence's score on its last one."""
    rewards = -kl_coef * kl * mask
    last = (mask.sum(dim=1).long() - 1).clamp(min=0)
    rewards[torch.arange(len(scores)), last] += scores * (mask.sum(dim=1) > 0)
    return rewards


def masked_whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit std over the entries where ``mask`` is 1; 0 elsewhere."""
    n = mask.sum()
    mean = (x * mask).sum() / n
    var = (((x - mean) * mask) ** 2).sum() / (n - 1).clamp(min=1)
    return (x - mean) * torch.rsqrt(var + 1e-8) * mask


def token_advantages(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
                     lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(whitened advantages, returns) of every answer token by GAE; an answer ends at its last
    token (nothing after it is bootstrapped), padding gets 0."""
    ends = torch.zeros_like(mask)
    last = (mask.sum(dim=1).long() - 1).clamp(min=0)
    ends[torch.arange(len(mask)), last] = 1.0
    done = ends + (1.0 - mask)  # padding: each its own finished step with no reward
    adv, returns = compute_gae((rewards * mask).T, (values * mask).T, done.T, torch.zeros(len(mask)), gamma, lam)
    return masked_whiten(adv.T, mask), returns.T * mask


def group_advantages(scores: torch.Tensor, group_size: int) -> torch.Tensor:
    """GRPO: each score against the mean and std of its group (``group_size`` consecutive
    answers to one prompt); a group whose answers all scored alike gets 0."""
    groups = scores.view(-1, group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    return (centred / (groups.std(dim=1, keepdim=True) + 1e-4)).view(-1)


def leave_one_out_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """RLOO: each reward minus the mean of the ``group_size - 1`` others in its group (consecutive
    answers to one prompt), an unbiased baseline that needs no critic (Kool et al. 2019;
    Ahmadian et al. 2024)."""
    groups = rewards.view(-1, group_size)
    others = (groups.sum(dim=1, keepdim=True) - groups) / (group_size - 1)
    return (groups - others).view(-1)


class AdaptiveKLController:
    """Ziegler et al. 2019: ``coef *= 1 + clip(kl / target - 1, -0.2, 0.2) * n / horizon`` after
    each batch of ``n`` answers, steering the measured KL towards ``target``."""

    def __init__(self, init_coef: float, target: float, horizon: int):
        self.coef, self.target, self.horizon = init_coef, target, horizon

    def update(self, kl: float, n: int) -> float:
        error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        self.coef *= 1.0 + error * n / self.horizon
        return self.coef

    def state_dict(self) -> dict[str, float]:
        return {"coef": self.coef}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.coef = float(state["coef"])
