"""The targets and losses of the DQN family's parts, each a function of tensors: C51's
projection (Bellemare et al. 2017), QR-DQN's quantile Huber loss (Dabney et al. 2018) with
its sorted fast path, and DrQ's random-shift augmentation (Kostrikov et al. 2020).
:class:`rlexp.algos.dqn.DQN` calls them; ``tests/algos/test_rainbow_parts.py`` checks each
against a plain computation."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def project_distribution(rewards: torch.Tensor, bootstrap: torch.Tensor, probs: torch.Tensor,
                         support: torch.Tensor) -> torch.Tensor:
    """C51's target (Bellemare et al. 2017, Algorithm 1): the distribution of
    ``r + bootstrap * z`` (z on ``support`` with ``probs``), clipped to the support's range and
    split between the two nearest atoms in proportion to closeness.

    Args:
        rewards: (B,) rewards (n-step returns).
        bootstrap: (B,) the discount of the bootstrap, 0 where terminated.
        probs: (B, K) the next state's distribution for the chosen action.
        support: (K,) evenly spaced atoms.
    """
    v_min, v_max, k = support[0], support[-1], support.numel()
    delta = (v_max - v_min) / (k - 1)
    tz = (rewards.unsqueeze(1) + bootstrap.unsqueeze(1) * support).clamp(v_min, v_max)
    b = (tz - v_min) / delta
    lower, upper = b.floor().long().clamp(0, k - 1), b.ceil().long().clamp(0, k - 1)
    # an atom hit exactly (lower == upper) keeps all its mass
    to_lower = probs * (upper.float() - b + (lower == upper).float())
    to_upper = probs * (b - lower.float())
    target = torch.zeros_like(probs)
    return target.scatter_add_(1, lower, to_lower).scatter_add_(1, upper, to_upper)


def random_shift(frames: torch.Tensor, generator: torch.Generator, pad: int = 4,
                 intensity: float = 0.05) -> torch.Tensor:
    """DrQ's augmentation as Dopamine's atari_100k agents run it: each image padded by ``pad``
    pixels (edges repeated), cropped back to its size at a random offset (Kostrikov et al. 2020),
    then scaled by ``1 + intensity * clip(N(0, 1), -2, 2)`` (Schwarzer et al. 2021). uint8
    frames in, [0, 1] float frames out.

    Args:
        frames: (N, C, H, W) uint8 stacked frames.
        generator: the learner's augmentation generator (its state is in the checkpoint).
    """
    n, c, h, w = frames.shape
    x = F.pad(frames.float().div_(255.0), (pad, pad, pad, pad), mode="replicate")
    dy, dx = (torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=frames.device) for _ in range(2))
    rows = (dy.view(n, 1) + torch.arange(h, device=frames.device)).view(n, 1, h, 1).expand(n, c, h, w + 2 * pad)
    x = x.gather(2, rows)
    cols = (dx.view(n, 1) + torch.arange(w, device=frames.device)).view(n, 1, 1, w).expand(n, c, h, w)
    x = x.gather(3, cols)
    noise = torch.randn((n, 1, 1, 1), generator=generator, device=frames.device).clamp_(-2.0, 2.0)
    return x.mul_(1.0 + intensity * noise)


def quantile_huber_loss(quantiles: torch.Tensor, target: torch.Tensor, kappa: float = 1.0) -> torch.Tensor:
    """QR-DQN's loss (Dabney et al. 2018, eq. 10) per transition: the quantile Huber loss of
    every (online quantile i, target sample j) pair, summed over i and averaged over j.

    Args:
        quantiles: (B, N) the taken action's quantiles, at fractions tau_i = (2i + 1) / 2N.
        target: (B, N') samples of the target distribution.
    """
    n = quantiles.shape[1]
    taus = (torch.arange(n, device=quantiles.device, dtype=quantiles.dtype) + 0.5) / n
    u = target.unsqueeze(1) - quantiles.unsqueeze(2)  # (B, N, N')
    huber = torch.where(u.abs() <= kappa, 0.5 * u.pow(2), kappa * (u.abs() - 0.5 * kappa))
    weight = (taus.view(1, n, 1) - (u.detach() < 0).to(u.dtype)).abs()
    return (weight * huber / kappa).sum(1).mean(1)


def quantile_huber_loss_sorted(quantiles: torch.Tensor, target: torch.Tensor, kappa: float = 1.0) -> torch.Tensor:
    """:func:`quantile_huber_loss`'s numbers and gradient without its (B, N, N') tensor of pairs.

    With each row's target samples sorted, the pairs of quantile i split into four runs of
    consecutive samples: u < -kappa, -kappa <= u < 0, 0 <= u <= kappa and u > kappa (u = t_j -
    theta_i). In each run the weight is one number (1 - tau_i below 0, tau_i above) and the
    Huber loss is linear or quadratic in t_j, so its sum needs only the run's count, its sum
    of t_j and of t_j^2: prefix sums over the sorted samples, read at three searchsorted
    boundaries. O(B N log N') instead of O(B N N'): with 200 quantiles the elementwise
    reference dominates a QR-DQN update on a CPU. The runs are summed in float64 (the
    quadratic terms subtract nearly equal numbers). ``tests/algos/test_rainbow_parts.py`` holds
    the two equal, values and gradients.

    Args:
        quantiles: (B, N) the taken action's quantiles (the gradient flows to them).
        target: (B, N') samples of the target distribution (no gradient).
    """
    return _SortedQuantileHuber.apply(quantiles, target.detach(), kappa)


class _SortedQuantileHuber(torch.autograd.Function):
    """The loss and its gradient with respect to the quantiles, both from one pass over the runs."""

    @staticmethod
    def forward(ctx, quantiles: torch.Tensor, target: torch.Tensor, kappa: float) -> torch.Tensor:
        q = quantiles.detach().double()
        t = target.double().sort(dim=1).values
        b, n = q.shape
        m = t.shape[1]
        zero = t.new_zeros(b, 1)
        sum_t = torch.cat([zero, t.cumsum(1)], 1)  # sum_t[:, j]: the sum of the j smallest samples
        sum_t2 = torch.cat([zero, (t * t).cumsum(1)], 1)
        edges = (torch.zeros_like(q, dtype=torch.long),
                 torch.searchsorted(t, q - kappa),  # samples with u < -kappa
                 torch.searchsorted(t, q),  # ... with u < 0
                 torch.searchsorted(t, q + kappa, right=True),  # ... with u <= kappa
                 torch.full_like(q, m, dtype=torch.long))

        def run(k: int):  # (count, sum of u, sum of u^2) over the k-th run
            start, end = edges[k], edges[k + 1]
            count = (end - start).to(q.dtype)
            s1 = sum_t.gather(1, end) - sum_t.gather(1, start)
            s2 = sum_t2.gather(1, end) - sum_t2.gather(1, start)
            return count, s1 - count * q, s2 - 2 * q * s1 + count * q * q

        (n1, u1, _), (n2, u2, sq2), (n3, u3, sq3), (n4, u4, _) = (run(k) for k in range(4))
        taus = (torch.arange(n, device=q.device, dtype=q.dtype) + 0.5) / n
        half = 0.5 * kappa * kappa
        below = -kappa * u1 - half * n1 + 0.5 * sq2  # the Huber losses of the pairs with u < 0
        above = 0.5 * sq3 + kappa * u4 - half * n4
        scale = 1.0 / (m * kappa)
        loss = (((1 - taus) * below + taus * above).sum(1) * scale).to(quantiles.dtype)
        # d loss / d theta_i = -(the weighted Huber derivatives clamp(u, -kappa, kappa)) / (N' kappa)
        grad = -(((1 - taus) * (u2 - kappa * n1) + taus * (u3 + kappa * n4)) * scale).to(quantiles.dtype)
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        (grad,) = ctx.saved_tensors
        return grad * grad_loss.unsqueeze(1), None, None
