"""The sum tree of prioritized replay against brute force: a running sum and a linear search."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlexp.buffers.sum_tree import SumTree


def brute_force_find(priorities: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The first slot whose running sum exceeds each value (a linear search, no tree)."""
    return np.searchsorted(np.cumsum(priorities), values, side="right")


@pytest.mark.parametrize("capacity", [1, 2, 5, 64, 1000])
def test_find_is_the_linear_search_over_running_sums(capacity):
    rng = np.random.default_rng(capacity)
    # multiples of 1/8, some 0 (empty slots): every sum is exact in float64, whatever its order,
    # so even values exactly on a boundary between slots must agree
    priorities = rng.integers(0, 16, capacity) / 8 * (rng.uniform(size=capacity) > 0.3)
    priorities[0] = 0.5
    tree = SumTree(capacity)
    tree.update(torch.arange(capacity), torch.as_tensor(priorities))
    assert float(tree.total) == priorities.sum()
    cums = np.cumsum(priorities)
    values = np.concatenate([rng.uniform(0, priorities.sum(), 500), cums[:-1]])  # and every boundary exactly
    values = values[values < cums[-1]]
    assert tree.find(torch.as_tensor(values)).tolist() == brute_force_find(priorities, values).tolist()


def test_a_value_at_the_total_gives_the_last_slot_with_a_priority():
    tree = SumTree(8)
    tree.update(torch.tensor([1, 3, 6]), torch.tensor([1.0, 2.0, 0.5]))
    assert tree.find(torch.tensor([3.5, 3.5 + 1e-9, 100.0])).tolist() == [6, 6, 6]
    assert tree.find(torch.tensor([0.0, 0.999, 1.0, 2.999, 3.0])).tolist() == [1, 1, 3, 3, 6]


def test_batched_updates_equal_one_at_a_time_and_the_last_duplicate_wins():
    rng = np.random.default_rng(0)
    batched, single = SumTree(100), SumTree(100)
    for _ in range(50):
        slots = rng.integers(0, 100, 32)
        priorities = rng.uniform(0, 3, 32)
        batched.update(torch.as_tensor(slots), torch.as_tensor(priorities))
        for s, p in zip(slots, priorities):
            single.update(torch.tensor([s]), torch.tensor([p]))
    assert torch.equal(batched.nodes, single.nodes)
    tree = SumTree(10)
    tree.update(torch.tensor([3, 7, 3, 3]), torch.tensor([1.0, 2.0, 5.0, 4.0]))
    expected = [0, 0, 0, 4.0, 0, 0, 0, 2.0, 0, 0]
    assert tree.priorities(torch.arange(10)).tolist() == expected and float(tree.total) == 6.0


def test_every_inner_node_is_the_sum_of_its_children_after_many_updates():
    rng = np.random.default_rng(1)
    tree = SumTree(300)
    for _ in range(200):
        tree.update(torch.as_tensor(rng.integers(0, 300, 17)), torch.as_tensor(rng.uniform(0, 1, 17)))
    inner = torch.arange(1, tree.leaves)
    assert torch.equal(tree.nodes[inner], tree.nodes[2 * inner] + tree.nodes[2 * inner + 1])


def test_samples_are_proportional_to_priority():
    """200k stratified draws over 6 slots: each slot's frequency within 1% (absolute) of p_i / sum(p)."""
    priorities = torch.tensor([0.0, 1.0, 2.0, 0.0, 4.0, 3.0], dtype=torch.float64)
    tree = SumTree(6)
    tree.update(torch.arange(6), priorities)
    draws = torch.cat([tree.sample(1000, torch.Generator().manual_seed(i)) for i in range(200)])
    freq = torch.bincount(draws, minlength=6).double() / len(draws)
    assert freq[0] == 0 and freq[3] == 0  # never an empty slot
    torch.testing.assert_close(freq, priorities / priorities.sum(), atol=0.01, rtol=0)


def test_state_round_trips_and_an_empty_tree_refuses_to_sample():
    tree = SumTree(10)
    with pytest.raises(ValueError, match="all zero"):
        tree.sample(4, torch.Generator().manual_seed(0))
    tree.update(torch.tensor([2, 9]), torch.tensor([0.25, 3.0]))
    copy = SumTree(10)
    copy.load_state_dict(tree.state_dict())
    assert torch.equal(copy.nodes, tree.nodes)
    with pytest.raises(ValueError, match="capacity 10 cannot load into one of 11"):
        SumTree(11).load_state_dict(tree.state_dict())
