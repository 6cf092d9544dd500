"""Running mean and variance, kept as module buffers so checkpoints carry them."""

from __future__ import annotations

import torch
from torch import nn


class RunningMeanStd(nn.Module):
    """Mean and variance of everything passed to :meth:`update` (Chan et al.'s parallel merge).

    Statistics are float64 buffers: ``state_dict`` saves them with the network, so a
    checkpoint evaluates with the statistics it trained with (Stable-Baselines3 keeps
    them in a separate VecNormalize file that is easy to lose).
    """

    def __init__(self, shape: tuple[int, ...] = (), clip: float = 10.0, epsilon: float = 1e-8):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.clip = clip
        self.epsilon = epsilon

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """Fold a batch of shape (N, *shape) into the statistics."""
        batch = batch.to(torch.float64).reshape(-1, *self.mean.shape)
        n = batch.shape[0]
        if n == 0:
            return
        batch_mean = batch.mean(dim=0)
        batch_var = batch.var(dim=0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * n / total
        self.var.copy_((self.var * self.count + batch_var * n + delta.square() * self.count * n / total) / total)
        self.count.copy_(total)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std, clipped to +-``clip``, in ``x``'s dtype."""
        mean = self.mean.to(x.dtype)
        std = (self.var + self.epsilon).sqrt().to(x.dtype)
        return ((x - mean) / std).clamp(-self.clip, self.clip)

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """x / std (no centering): reward scaling by the spread of the returns."""
        return x / (self.var + self.epsilon).sqrt().to(x.dtype)
