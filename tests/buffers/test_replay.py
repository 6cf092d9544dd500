import numpy as np
import pytest
import torch

from rlexp.buffers import ReplayBuffer


def _fill(buf: ReplayBuffer, start: int, n: int, num_envs: int = 1) -> None:
    """Add transitions whose obs/action/reward all encode their index (start .. start+n-1)."""
    for i in range(start, start + n, num_envs):
        ids = np.arange(i, i + num_envs)
        obs = np.repeat(ids[:, None], 3, axis=1).astype(np.float32)
        buf.add(obs, ids, ids.astype(np.float32), obs + 0.5, (ids % 2).astype(np.float32))


def test_shapes_and_dtypes():
    buf = ReplayBuffer(100, (3,), np.float32, seed=0)
    _fill(buf, 0, 10)
    batch = buf.sample(8)
    assert batch.obs.shape == (8, 3) and batch.obs.dtype == torch.float32
    assert batch.next_obs.shape == (8, 3)
    assert batch.actions.shape == (8,) and batch.actions.dtype == torch.int64
    assert batch.rewards.shape == (8,) and batch.rewards.dtype == torch.float32
    assert batch.terminated.shape == (8,) and batch.terminated.dtype == torch.float32
    many = buf.sample(8, num_batches=5)
    assert many.obs.shape == (5, 8, 3) and many.actions.shape == (5, 8)


def test_uint8_observations_stay_uint8():
    buf = ReplayBuffer(10, (2, 2), np.uint8)
    obs = np.full((1, 2, 2), 255, dtype=np.uint8)
    buf.add(obs, np.array([1]), np.array([0.0]), obs, np.array([0.0]))
    assert buf.sample(4).obs.dtype == torch.uint8


def test_samples_are_consistent_transitions():
    buf = ReplayBuffer(50, (3,), np.float32, seed=1)
    _fill(buf, 0, 30)
    b = buf.sample(256)
    ids = b.actions.float()
    assert torch.equal(b.obs[:, 0], ids)
    assert torch.equal(b.rewards, ids)
    assert torch.equal(b.next_obs[:, 0], ids + 0.5)
    assert torch.equal(b.terminated, ids % 2)
    assert b.actions.max() < 30  # only filled slots are sampled


def test_capacity_wraps_around_oldest_first():
    buf = ReplayBuffer(10, (3,), np.float32)
    _fill(buf, 0, 10)
    assert len(buf) == 10 and buf.pos == 0
    _fill(buf, 10, 4)
    assert len(buf) == 10 and buf.pos == 4
    stored = sorted(buf.actions.tolist())
    assert stored == list(range(4, 14))  # 0..3 overwritten by 10..13


def test_vector_add_wraps_across_the_end():
    buf = ReplayBuffer(10, (3,), np.float32)
    _fill(buf, 0, 8, num_envs=4)  # pos 8
    _fill(buf, 8, 4, num_envs=4)  # writes slots 8, 9, 0, 1
    assert buf.pos == 2 and len(buf) == 10
    assert buf.actions[[8, 9, 0, 1]].tolist() == [8, 9, 10, 11]


def test_sampling_is_seeded():
    a, b = ReplayBuffer(100, (3,), np.float32, seed=5), ReplayBuffer(100, (3,), np.float32, seed=5)
    _fill(a, 0, 100)
    _fill(b, 0, 100)
    assert torch.equal(a.sample(32).actions, b.sample(32).actions)


def test_state_dict_round_trip():
    buf = ReplayBuffer(20, (3,), np.float32, seed=3)
    _fill(buf, 0, 25)
    state = buf.state_dict()
    copy = ReplayBuffer(20, (3,), np.float32, seed=99)
    copy.load_state_dict(state)
    assert (copy.pos, copy.size) == (buf.pos, buf.size)
    assert torch.equal(copy.sample(16).actions, buf.sample(16).actions)


def test_errors():
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, (3,), np.float32)
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(5, (3,), np.float32).sample(1)


def test_tensor_write_path_matches_the_numpy_path():
    """The path used when storage is on a GPU (no numpy views) stores the same data."""
    a = ReplayBuffer(10, (3,), np.float32, seed=0)
    b = ReplayBuffer(10, (3,), np.float32, seed=0)
    b._np = None
    for buf in (a, b):
        _fill(buf, 0, 8, num_envs=4)
        _fill(buf, 8, 4, num_envs=4)  # wraps
    for field_a, field_b in zip(a._fields, b._fields):
        assert torch.equal(field_a, field_b)
