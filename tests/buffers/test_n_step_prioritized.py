"""n-step returns and prioritized sampling in both replay buffers, against plain loops."""

import numpy as np
import pytest
import torch

from rlexp.buffers import FrameReplayBuffer, ReplayBuffer
from rlexp.buffers.prioritized import PRIORITY_EPSILON, n_step_returns

GAMMA = 0.9


def _stream(rng, steps, num_envs):
    """Per step and env: (reward, terminated, episode_end); some ends truncate, some terminate,
    and some terminations (life losses) do not end the episode."""
    rewards = rng.integers(-3, 4, (steps, num_envs)).astype(np.float32)
    terminated = rng.random((steps, num_envs)) < 0.08
    truncated = rng.random((steps, num_envs)) < 0.05
    life_loss = terminated & (rng.random((steps, num_envs)) < 0.3)
    ends = (terminated & ~life_loss) | truncated
    return rewards, terminated, ends


def _expected(history, start, n):
    """n-step return from history[start] walking the env's own later transitions."""
    total, k = 0.0, 0
    while True:
        reward, terminated, end, next_id = history[start + k]
        total += GAMMA**k * reward
        k += 1
        if terminated or end or k == n or start + k == len(history):
            return total, next_id, float(terminated), GAMMA**k


def test_n_step_returns_stop_at_the_first_end_and_at_missing_successors():
    rewards = torch.tensor([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    stops = torch.tensor([[False, False, False], [False, True, False], [True, False, False]])
    available = torch.tensor([[True, True, False], [True, True, True], [True, True, True]])
    returns, last, discounts = n_step_returns(rewards, stops, available, 0.5)
    assert returns.tolist() == [2.0, 2.0, 1.0]
    assert last.tolist() == [1, 1, 0] and discounts.tolist() == [0.25, 0.25, 0.5]
    # steps not taken may hold slots never written: their bits never reach the return
    garbage = rewards.clone()
    garbage[0, 2], garbage[1, 2], garbage[2, 1:] = float("nan"), float("inf"), float("nan")
    assert n_step_returns(garbage, stops, available, 0.5)[0].tolist() == [2.0, 2.0, 1.0]


@pytest.mark.parametrize("num_envs,n_step,capacity", [(1, 3, 40), (3, 5, 45), (2, 1, 30)])
def test_vector_replay_n_step_matches_a_loop(num_envs, n_step, capacity):
    rng = np.random.default_rng(num_envs)
    steps = 70
    rewards, terminated, ends = _stream(rng, steps, num_envs)
    buf = ReplayBuffer(capacity, (1,), np.float32, num_envs=num_envs, n_step=n_step, gamma=GAMMA)
    histories = [[] for _ in range(num_envs)]
    where = {}  # linear id -> (env, position in its history)
    for t in range(steps):
        ids = t * num_envs + np.arange(num_envs)
        buf.add(ids[:, None].astype(np.float32), ids, rewards[t], (ids[:, None] + 0.5).astype(np.float32),
                terminated[t].astype(np.float32), ends[t])
        for e in range(num_envs):
            where[int(ids[e])] = (e, len(histories[e]))
            histories[e].append((rewards[t, e], terminated[t, e], ends[t, e], ids[e] + 0.5))
    idx = torch.arange(capacity)
    batch = buf.sample(1) if n_step == 1 else None
    if n_step == 1:
        assert batch.discounts is None
        return
    returns, next_obs, term, discounts = buf._n_step(idx)
    for j in range(capacity):
        e, i = where[int(buf.obs[j, 0])]
        ret, next_id, t, disc = _expected(histories[e], i, n_step)
        assert returns[j].item() == pytest.approx(ret, abs=1e-5)
        assert next_obs[j, 0].item() == next_id and term[j].item() == t
        assert discounts[j].item() == pytest.approx(disc)


@pytest.mark.parametrize("num_envs,n_step", [(1, 3), (2, 4)])
def test_frame_store_n_step_matches_a_loop(num_envs, n_step):
    rng = np.random.default_rng(7 + num_envs)
    stack, steps = 2, 80
    rewards, terminated, ends = _stream(rng, steps, num_envs)
    buf = FrameReplayBuffer(40, (stack, 1, 1), num_envs=num_envs, n_step=n_step, gamma=GAMMA, validate=True)
    # each frame value is unique (mod 256): frame = step id, so a stack names its newest frame
    counter = [1]

    def frame():
        counter[0] += 1
        return counter[0] % 256

    obs = np.zeros((num_envs, stack, 1, 1), np.uint8)
    for e in range(num_envs):
        obs[e, :, 0, 0] = [frame() for _ in range(stack)]
    histories = [[] for _ in range(num_envs)]
    newest, seen_obs = {}, {}
    for t in range(steps):
        next_obs = np.concatenate([obs[:, 1:], np.zeros((num_envs, 1, 1, 1), np.uint8)], axis=1)
        for e in range(num_envs):
            next_obs[e, -1, 0, 0] = frame()
        buf.add(obs, np.arange(num_envs) + 10 * t, rewards[t], next_obs, terminated[t], ends[t])
        for e in range(num_envs):
            newest[(e, int(next_obs[e, -1, 0, 0]))] = len(histories[e])
            seen_obs[(e, int(next_obs[e, -1, 0, 0]))] = obs[e].copy()
            histories[e].append((rewards[t, e], terminated[t, e], ends[t, e], int(next_obs[e, -1, 0, 0])))
        obs = next_obs.copy()
        for e in np.flatnonzero(ends[t]):
            obs[e, :, 0, 0] = [frame() for _ in range(stack)]
    idx = buf._valid_indices()
    batch = buf._gather(idx)
    assert batch.discounts is not None
    for row, flat in enumerate(idx):
        e = flat % num_envs
        own = int(buf.frames[flat // num_envs, e, 0, 0])  # the newest frame of its one-step next_obs
        start = newest[(e, own)]
        ret, next_id, t, disc = _expected(histories[e], start, n_step)
        assert batch.rewards[row].item() == pytest.approx(ret, abs=1e-5)
        assert int(batch.next_obs[row, -1, 0, 0]) == next_id and batch.terminated[row].item() == t
        assert batch.discounts[row].item() == pytest.approx(disc)
        assert np.array_equal(batch.obs[row].numpy(), seen_obs[(e, own)])  # obs is the transition's own


def test_prioritized_sampling_follows_the_priorities_and_weights_them():
    buf = ReplayBuffer(8, (1,), np.float32, seed=3, priority_exponent=1.0)
    for i in range(8):
        buf.add(np.array([[i]], np.float32), np.array([i]), np.zeros(1), np.zeros((1, 1), np.float32), np.zeros(1))
    assert torch.allclose(buf.priorities.tree.priorities(torch.arange(8)), torch.ones(8, dtype=torch.float64))
    errors = torch.tensor([0.0, 1, 2, 3, 4, 5, 6, 7])
    buf.update_priorities(torch.arange(8), errors)
    batch = buf.sample(50_000 // 10, num_batches=10, importance_exponent=0.5)
    counts = torch.bincount(batch.indices.reshape(-1), minlength=8).double()
    p = (errors.double() + PRIORITY_EPSILON) / (errors.double() + PRIORITY_EPSILON).sum()
    assert torch.allclose(counts / counts.sum(), p, atol=0.01)
    assert torch.equal(batch.actions, batch.indices)  # the batch is the transitions at the indices
    w = (8 * p[batch.indices]) ** -0.5
    assert torch.allclose(batch.weights.double(), w / w.amax(dim=-1, keepdim=True), rtol=1e-5)
    # a new transition enters at the largest priority so far
    buf.add(np.array([[8]], np.float32), np.array([8]), np.zeros(1), np.zeros((1, 1), np.float32), np.zeros(1))
    assert buf.priorities.tree.priorities(torch.tensor([0])).item() == pytest.approx(7 + PRIORITY_EPSILON)


def test_prioritized_frame_store_never_draws_an_invalid_slot_and_resumes_exactly():
    rng = np.random.default_rng(0)
    stack, num_envs = 3, 2
    buf = FrameReplayBuffer(30, (stack, 2, 2), num_envs=num_envs, seed=5, priority_exponent=0.5, n_step=3)
    obs = rng.integers(0, 255, (num_envs, stack, 2, 2), dtype=np.uint8)
    for t in range(60):
        next_obs = np.concatenate([obs[:, 1:], rng.integers(0, 255, (num_envs, 1, 2, 2), dtype=np.uint8)], axis=1)
        ends = rng.random(num_envs) < 0.1
        buf.add(obs, rng.integers(0, 4, num_envs), rng.random(num_envs), next_obs, ends, ends)
        obs = next_obs
        for e in np.flatnonzero(ends):
            obs[e] = rng.integers(0, 255, (stack, 2, 2), dtype=np.uint8)
        if t % 7 == 6:
            batch = buf.sample(16)
            buf.update_priorities(batch.indices, torch.rand(16))
    leaves = buf.priorities.tree.priorities(torch.arange(buf.slots * num_envs))
    assert torch.equal(leaves > 0, torch.from_numpy(buf._valid_np.reshape(-1) == 1))
    batch = buf.sample(500)
    assert buf._valid_np.reshape(-1)[batch.indices.numpy()].all()
    copy = FrameReplayBuffer(30, (stack, 2, 2), num_envs=num_envs, seed=99, priority_exponent=0.5, n_step=3)
    copy.load_state_dict(buf.state_dict())
    a, b = buf.sample(8, num_batches=2, importance_exponent=0.4), copy.sample(8, num_batches=2, importance_exponent=0.4)
    for x, y in zip(a, b):
        assert torch.equal(x, y)  # every field is set: n-step and prioritized
