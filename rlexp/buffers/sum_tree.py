"""A sum tree: priorities over a fixed number of slots, sampled in proportion to their value.

The data structure of proportional prioritized replay (Schaul et al. 2016, Appendix B.2.1):
a complete binary tree whose leaves hold the slots' priorities and whose every inner node
holds the sum of its two children, so the root is the total. Drawing a slot with probability
``p_i / sum(p)`` is a walk from the root, and changing a priority rewrites one path: both cost
``log2(capacity)`` steps.

Every operation here is vectorized over a batch, one tensor operation per tree level (about
20 for a million slots) instead of one Python step per level and per item, and runs where
the tree lives (CPU or GPU). The tree is stored in float64: a float32 root that sums a
million priorities would lose the small ones to rounding.
"""

from __future__ import annotations

import torch


class SumTree:
    """Priorities of ``capacity`` slots (all 0 at first), with batched updates and proportional sampling."""

    def __init__(self, capacity: int, device: torch.device | str = "cpu"):
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        self.capacity = int(capacity)
        self.depth = max(1, (self.capacity - 1).bit_length())  # levels below the root
        self.leaves = 1 << self.depth  # leaf i is node leaves + i; node 1 is the root
        self.device = torch.device(device)
        self.nodes = torch.zeros(2 * self.leaves, dtype=torch.float64, device=self.device)

    @property
    def total(self) -> torch.Tensor:
        """The sum of every priority (a 0-d tensor on the tree's device)."""
        return self.nodes[1]

    def priorities(self, slots: torch.Tensor) -> torch.Tensor:
        """The priorities of ``slots`` (float64)."""
        return self.nodes[self.leaves + slots]

    def update(self, slots: torch.Tensor, priorities: torch.Tensor) -> None:
        """Set the priorities of ``slots`` (non-negative; where a slot appears more than once, its
        last priority wins) and the sums above them."""
        slots = torch.as_tensor(slots, device=self.device).long().reshape(-1)
        priorities = torch.as_tensor(priorities, device=self.device).to(torch.float64).reshape(-1)
        if slots.numel() == 0:
            return
        # keep each slot's last priority: a stable sort groups duplicates in their order
        slots, order = torch.sort(slots, stable=True)
        last = torch.ones_like(slots, dtype=torch.bool)
        last[:-1] = slots[1:] != slots[:-1]
        slots, priorities = slots[last], priorities[order][last]
        node = slots + self.leaves
        self.nodes[node] = priorities
        for _ in range(self.depth):  # each parent once, from its two children (no accumulated rounding)
            node = torch.unique_consecutive(node // 2)
            self.nodes[node] = self.nodes[2 * node] + self.nodes[2 * node + 1]

    def find(self, values: torch.Tensor) -> torch.Tensor:
        """The slot each of ``values`` (in [0, total)) falls in: the first slot whose running sum
        of priorities exceeds the value. A value at or beyond the total gives the last slot with
        a positive priority, so rounding can never pick an empty slot."""
        values = torch.as_tensor(values, device=self.device).to(torch.float64).reshape(-1).clone()
        node = torch.ones_like(values, dtype=torch.long)
        for _ in range(self.depth):
            left = self.nodes[2 * node]
            right = (values >= left) & (self.nodes[2 * node + 1] > 0)
            values -= left * right
            node = 2 * node + right
        return node - self.leaves

    def sample(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """``count`` slots drawn with probability ``p_i / total``, stratified as in Schaul et al.:
        the total split into ``count`` equal segments, one uniform draw in each."""
        if not float(self.total) > 0:
            raise ValueError("cannot sample from a sum tree whose priorities are all zero")
        offsets = torch.rand(count, generator=generator, device=self.device, dtype=torch.float64)
        values = (torch.arange(count, device=self.device, dtype=torch.float64) + offsets) * (self.total / count)
        return self.find(values)

    def state_dict(self) -> dict:
        return {"capacity": self.capacity, "leaves": self.nodes[self.leaves : self.leaves + self.capacity].cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"a sum tree of capacity {state['capacity']} cannot load into one of {self.capacity}")
        self.nodes.zero_()
        self.update(torch.arange(self.capacity, device=self.device), state["leaves"].to(self.device))
