"""Proportional prioritization (Schaul et al. 2016) for the replay buffers, and n-step returns.

:class:`Priorities` is what a buffer holds when its replay is prioritized: one sum tree
over the buffer's slots. A new transition enters at the largest priority seen so far (so
it is replayed at least once soon); a learner hands back each sampled transition's error
(its absolute TD error, or its distributional loss), stored as
``(error + PRIORITY_EPSILON) ** priority_exponent``; a slot that stops holding a transition
gets priority 0 and is never drawn. Sampling is stratified, and each draw comes with its
importance-sampling weight ``(N * P(i)) ** -importance_exponent``, divided by the batch's
largest (the normalization of Schaul et al.'s Algorithm 1, per batch as in Dopamine).

:func:`n_step_returns` folds up to ``n`` consecutive rewards of each sampled transition
into one, the arithmetic both buffers share once they have gathered the rewards and flags
of each transition's successors.
"""

from __future__ import annotations

import numpy as np
import torch

from rlexp.buffers.sum_tree import SumTree

# Added to every error before the exponent, so a transition learnt perfectly keeps a small
# chance of being replayed (Schaul et al. 2016, section 3.3: p_i = |delta_i| + epsilon).
PRIORITY_EPSILON = 1e-6


class Priorities:
    """Sampling priorities over ``slots`` buffer slots (flat indices), kept in a sum tree.

    Args:
        slots: how many flat indices the buffer can hand out.
        exponent: the priority exponent alpha (0 = uniform, 1 = fully proportional).
        device: where the tree lives (the buffer's bookkeeping device).
    """

    def __init__(self, slots: int, exponent: float, device: torch.device | str = "cpu"):
        self.tree = SumTree(slots, device)
        self.exponent = float(exponent)
        self.max_priority = 1.0  # the largest stored priority (after the exponent): new transitions get it

    def set(self, index: np.ndarray | torch.Tensor, present: np.ndarray | torch.Tensor | None = None) -> None:
        """New transitions at ``index`` get the largest priority; where ``present`` is False the
        slot holds none and gets 0. A slot listed twice keeps its last entry."""
        index = torch.as_tensor(index, device=self.tree.device).reshape(-1)
        priority = torch.full(index.shape, self.max_priority, dtype=torch.float64, device=self.tree.device)
        if present is not None:
            priority *= torch.as_tensor(present, device=self.tree.device).reshape(-1)
        self.tree.update(index, priority)

    def update(self, index: torch.Tensor, errors: torch.Tensor) -> None:
        """Store ``(errors + epsilon) ** exponent`` at ``index`` (the sampled transitions' new errors)."""
        priority = (errors.detach().to(self.tree.device, torch.float64).reshape(-1) + PRIORITY_EPSILON) ** self.exponent
        self.max_priority = max(self.max_priority, float(priority.max()))
        self.tree.update(index.to(self.tree.device).reshape(-1), priority)

    def sample(self, shape: tuple[int, ...], count: int, generator: torch.Generator,
               importance_exponent: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(flat indices, importance weights), each of ``shape``. ``count`` is how many
        transitions the buffer holds (N in the weights); one stratified draw per batch."""
        batches = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        index = torch.stack([self.tree.sample(shape[-1], generator) for _ in range(batches)]).reshape(shape)
        probability = self.tree.priorities(index) / self.tree.total
        weights = (count * probability) ** -importance_exponent
        weights = weights / weights.amax(dim=-1, keepdim=True)
        return index, weights.float()

    def state_dict(self) -> dict:
        return {"tree": self.tree.state_dict(), "max_priority": self.max_priority}

    def load_state_dict(self, state: dict) -> None:
        self.tree.load_state_dict(state["tree"])
        self.max_priority = float(state["max_priority"])


def n_step_returns(rewards: torch.Tensor, stops: torch.Tensor, available: torch.Tensor,
                   gamma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fold each transition's next ``n`` rewards into one n-step return.

    Args:
        rewards: ``(..., n)`` the rewards of the transition and its ``n - 1`` successors in its env.
        stops: ``(..., n)`` bool, True where that transition ended the return: its episode
            terminated or was truncated, or (Atari) a life was lost.
        available: ``(..., n)`` bool, False where the successor has not happened yet (the
            newest transitions of an unfinished episode), which shortens the return.
        gamma: the discount.

    Returns:
        ``(returns, last, discounts)``: ``sum_k gamma^k r_k`` over the steps taken, the offset
        of the last step taken (whose next observation and terminal flag the target uses),
        and ``gamma ** steps``, the discount of the bootstrap from there.
    """
    n = rewards.shape[-1]
    # step k is taken when the transition is there and no earlier step ended the return
    ended_before = torch.cumsum(stops.to(torch.int32), dim=-1) - stops.to(torch.int32)
    taken = available & (ended_before == 0)
    taken = torch.cumprod(taken.to(torch.int32), dim=-1).bool()  # a missing successor ends it too
    powers = gamma ** torch.arange(n, dtype=torch.float64, device=rewards.device)
    # where, not a product: a step not taken may read a slot never written (any bits, even NaN)
    returns = torch.where(taken, rewards.double() * powers, 0.0).sum(-1).to(rewards.dtype)
    steps = taken.sum(-1)
    return returns, steps - 1, (gamma ** steps.double()).to(rewards.dtype)
