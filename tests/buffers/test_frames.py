"""FrameReplayBuffer against a naive buffer that stores every obs and next_obs in full.

Frames are random pixels with (env, frame number) written into the first pixels, so every
frame in a test is distinct and a stack built from a wrong, stale or other-env frame shows.
"""

import numpy as np
import pytest
import torch

from rlexp.buffers import FrameReplayBuffer, ReplayBatch

STACK, H, W = 4, 6, 6
SHAPE = (STACK, H, W)


class NaiveBuffer:
    """The reference: every transition's full obs and next_obs, keyed by its id (its action)."""

    def __init__(self):
        self.transitions: dict[int, tuple] = {}

    def add(self, obs, actions, rewards, next_obs, terminated):
        for i, a in enumerate(actions):
            self.transitions[int(a)] = (obs[i].copy(), float(rewards[i]), next_obs[i].copy(), float(terminated[i]))

    def assert_matches(self, batch: ReplayBatch) -> None:
        """Every transition of ``batch`` (any leading shape) is byte-identical to the one added."""
        flat = [f.reshape(-1, *f.shape[batch.actions.dim():]) for f in batch[:5]]  # the one-step fields
        for obs, action, reward, next_obs, terminated in zip(*flat):
            ref_obs, ref_reward, ref_next, ref_term = self.transitions[int(action)]
            np.testing.assert_array_equal(obs.numpy(), ref_obs, err_msg=f"obs of transition {int(action)}")
            np.testing.assert_array_equal(next_obs.numpy(), ref_next, err_msg=f"next_obs of transition {int(action)}")
            assert (float(reward), float(terminated)) == (ref_reward, ref_term)


class FakeAtari:
    """``num_envs`` frame-stacking envs stepped in lockstep, feeding both buffers.

    Episodes end at random (terminated or truncated), lives are lost at random (terminated
    without an episode end), and every reset pads its stack in one of ``paddings``.
    """

    def __init__(self, num_envs, seed=0, p_end=0.15, p_life=0.1, paddings=("zeros", "repeat", "random")):
        self.num_envs, self.p_end, self.p_life, self.paddings = num_envs, p_end, p_life, paddings
        self.rng = np.random.default_rng(seed)
        self.frame_count = np.zeros(num_envs, dtype=np.int64)
        self.next_id = 0
        self.obs = np.stack([self._reset(e) for e in range(num_envs)])
        # the stream model the buffer promises: per env, slots written and each transition's
        # newest-frame slot (a reset writes `stack` slots, a step one)
        self.written = np.zeros(num_envs, dtype=np.int64)
        self.fresh = np.ones(num_envs, dtype=bool)
        self.position: dict[int, tuple[int, int]] = {}

    def _frame(self, env: int) -> np.ndarray:
        f = self.rng.integers(0, 256, (H, W), dtype=np.uint8)
        f[0, 0], f[0, 1], f[0, 2] = env, self.frame_count[env] % 256, self.frame_count[env] // 256
        self.frame_count[env] += 1
        return f

    def _reset(self, env: int) -> np.ndarray:
        first = self._frame(env)
        padding = self.paddings[self.rng.integers(len(self.paddings))]
        if padding == "zeros":
            pad = [np.zeros_like(first)] * (STACK - 1)
        elif padding == "repeat":
            pad = [first] * (STACK - 1)
        else:  # any padding at all: frames that never occur in the stream
            pad = [self._frame(env) for _ in range(STACK - 1)]
        return np.stack([*pad, first])

    def step(self, buffers, naive: NaiveBuffer, *, end=None, life=None, truncate=None) -> None:
        n = self.num_envs
        ids = np.arange(self.next_id, self.next_id + n)
        self.next_id += n
        next_obs = np.stack([np.concatenate([self.obs[e, 1:], self._frame(e)[None]]) for e in range(n)])
        end = self.rng.random(n) < self.p_end if end is None else np.asarray(end)
        truncate = self.rng.random(n) < 0.5 if truncate is None else np.asarray(truncate)
        life = self.rng.random(n) < self.p_life if life is None else np.asarray(life)
        terminated = np.where(end, ~truncate, life)  # a life loss is terminal for the learner only
        rewards = ids.astype(np.float32) / 8
        for buf in buffers:
            buf.add(self.obs, ids, rewards, next_obs, terminated, episode_end=end)
        naive.add(self.obs, ids, rewards, next_obs, terminated)
        for e in range(n):
            self.written[e] += STACK * self.fresh[e]
            self.position[int(ids[e])] = (e, int(self.written[e]))
            self.written[e] += 1
        self.fresh = end.copy()
        self.obs = np.stack([self._reset(e) if end[e] else next_obs[e] for e in range(n)])

    def expected_ids(self, slots: int) -> set[int]:
        """Transitions whose whole window (newest slot and the `stack` before it) is still in the ring."""
        return {i for i, (e, p) in self.position.items() if p - STACK >= self.written[e] - slots}


def stored_ids(buf: FrameReplayBuffer) -> set[int]:
    return set(buf._gather(buf._valid_indices()).actions.tolist())


def check_against_naive(buf: FrameReplayBuffer, env: FakeAtari, naive: NaiveBuffer) -> None:
    everything = buf._gather(buf._valid_indices())
    naive.assert_matches(everything)
    assert set(everything.actions.tolist()) == env.expected_ids(buf.slots)
    assert len(buf) == len(everything.actions)
    batch = buf.sample(16, num_batches=4)
    naive.assert_matches(batch)


@pytest.mark.parametrize(
    ("num_envs", "capacity", "steps"),
    [(1, 30, 120), (1, 1000, 150), (3, 40, 60), (3, 300, 40)],  # 1 env, 3 envs interleaved; wrapping or not
)
def test_matches_the_naive_buffer_throughout(num_envs, capacity, steps):
    buf = FrameReplayBuffer(capacity, SHAPE, seed=1, num_envs=num_envs, validate=True)
    env, naive = FakeAtari(num_envs, seed=num_envs + capacity), NaiveBuffer()
    for t in range(steps):
        env.step([buf], naive)
        if t % 5 == 4:
            check_against_naive(buf, env, naive)
    assert (env.written.min() > buf.slots) == (capacity < 100)  # the small rings did wrap


def test_no_sample_spans_an_overwritten_frame():
    """Short episodes in a tiny ring: most slots are reset frames or just evicted."""
    buf = FrameReplayBuffer(6, SHAPE, seed=2, num_envs=1)
    env, naive = FakeAtari(1, seed=3, p_end=0.4), NaiveBuffer()
    for _ in range(200):
        env.step([buf], naive)
        batch = buf.sample(8, num_batches=4)
        naive.assert_matches(batch)
        assert set(batch.actions.flatten().tolist()) <= env.expected_ids(buf.slots)


def test_one_long_episode_holds_exactly_capacity_transitions():
    buf = FrameReplayBuffer(10, SHAPE, num_envs=1)
    env, naive = FakeAtari(1, p_end=0.0, p_life=0.0), NaiveBuffer()
    for _ in range(25):
        env.step([buf], naive)
    assert len(buf) == 10
    assert stored_ids(buf) == set(range(15, 25))  # the newest 10
    naive.assert_matches(buf.sample(64))


def test_each_episode_start_in_the_ring_costs_stack_slots():
    buf = FrameReplayBuffer(20, SHAPE, num_envs=1)
    env, naive = FakeAtari(1, p_end=0.0, p_life=0.0), NaiveBuffer()
    for t in range(40):
        env.step([buf], naive, end=[t % 10 == 9])
    # 4 episodes of 10 (14 slots each with the reset stack) through a 24-slot ring: it holds
    # the newest 20 transitions' windows, less the 4 slots of the last episode's reset stack
    assert buf.slots == 24
    assert len(buf) == 20 - STACK == 16
    assert stored_ids(buf) == set(range(24, 40))


@pytest.mark.parametrize("padding", ["zeros", "repeat", "random"])
def test_reset_stacks_come_back_byte_for_byte(padding):
    buf = FrameReplayBuffer(50, SHAPE, num_envs=1)
    env, naive = FakeAtari(1, p_end=0.0, p_life=0.0, paddings=(padding,)), NaiveBuffer()
    for t in range(12):
        env.step([buf], naive, end=[t == 5])  # episode 1: ids 0..5, episode 2: ids 6..11
    batch = buf._gather(buf._valid_indices())
    naive.assert_matches(batch)
    first = batch.obs[batch.actions == 6][0]  # the second episode's reset stack
    if padding == "zeros":
        assert not first[:-1].any()
    elif padding == "repeat":
        assert (first == first[-1]).all()


def test_a_life_loss_keeps_the_frame_stream():
    """terminated without episode_end: the next stacks still reach back across it."""
    buf = FrameReplayBuffer(50, SHAPE, num_envs=1, validate=True)
    env, naive = FakeAtari(1, p_end=0.0, p_life=0.0), NaiveBuffer()
    for t in range(8):
        env.step([buf], naive, end=[False], life=[t == 3])
    batch = buf._gather(buf._valid_indices())
    naive.assert_matches(batch)
    assert batch.terminated.tolist() == [0, 0, 0, 1, 0, 0, 0, 0]
    after = batch.obs[batch.actions == 4][0]
    np.testing.assert_array_equal(after.numpy(), naive.transitions[3][2])  # obs after = next_obs before


def test_a_truncated_transition_keeps_its_real_final_observation():
    buf = FrameReplayBuffer(50, SHAPE, num_envs=1)
    env, naive = FakeAtari(1, p_end=0.0, p_life=0.0), NaiveBuffer()
    for t in range(6):
        env.step([buf], naive, end=[t == 2], truncate=[True])
    batch = buf._gather(buf._valid_indices())
    naive.assert_matches(batch)
    last = batch.actions == 2
    assert batch.terminated[last].item() == 0.0  # truncation bootstraps...
    np.testing.assert_array_equal(batch.next_obs[last][0].numpy(), naive.transitions[2][2])  # ...from the final obs


def test_shapes_and_dtypes():
    buf = FrameReplayBuffer(100, SHAPE, num_envs=2)
    env, naive = FakeAtari(2), NaiveBuffer()
    for _ in range(10):
        env.step([buf], naive)
    batch = buf.sample(8)
    assert batch.obs.shape == (8, *SHAPE) and batch.obs.dtype == torch.uint8
    assert batch.next_obs.shape == (8, *SHAPE) and batch.next_obs.dtype == torch.uint8
    assert batch.actions.shape == (8,) and batch.actions.dtype == torch.int64
    assert batch.rewards.shape == (8,) and batch.rewards.dtype == torch.float32
    assert batch.terminated.shape == (8,) and batch.terminated.dtype == torch.float32
    assert batch.obs.is_contiguous() and batch.next_obs.is_contiguous()
    many = buf.sample(8, num_batches=5)
    assert many.obs.shape == (5, 8, *SHAPE) and many.next_obs.shape == (5, 8, *SHAPE)
    assert many.actions.shape == many.rewards.shape == many.terminated.shape == (5, 8)
    assert all(t.device == torch.device("cpu") for t in many[:5])


@pytest.mark.parametrize(("num_envs", "capacity", "steps"), [(1, 30, 80), (3, 300, 30)])  # wrapped; envs at different slots
def test_sampling_is_uniform_over_the_valid_transitions(num_envs, capacity, steps):
    buf = FrameReplayBuffer(capacity, SHAPE, seed=4, num_envs=num_envs)
    env, naive = FakeAtari(num_envs, seed=5, p_end=0.2), NaiveBuffer()
    for _ in range(steps):
        env.step([buf], naive)
    assert len(set(env.written.tolist())) > 1 or num_envs == 1
    valid = stored_ids(buf)
    counts = torch.bincount(buf.sample(1000, num_batches=20).actions.flatten(), minlength=env.next_id)
    assert set(torch.nonzero(counts).flatten().tolist()) == valid
    expected = 20_000 / len(valid)
    assert (counts[list(valid)].float() - expected).abs().max() < 6 * expected**0.5


def test_sampling_is_seeded():
    a = FrameReplayBuffer(40, SHAPE, seed=5, num_envs=3)
    b = FrameReplayBuffer(40, SHAPE, seed=5, num_envs=3)
    c = FrameReplayBuffer(40, SHAPE, seed=6, num_envs=3)
    env, naive = FakeAtari(3), NaiveBuffer()
    for _ in range(30):
        env.step([a, b, c], naive)
    first, second = a.sample(32, num_batches=3), b.sample(32, num_batches=3)
    assert all(torch.equal(x, y) for x, y in zip(first[:5], second[:5]))
    assert not torch.equal(first.actions, c.sample(32, num_batches=3).actions)


def test_state_dict_round_trip_continues_identically(tmp_path):
    buf = FrameReplayBuffer(40, SHAPE, seed=3, num_envs=3)
    env, naive = FakeAtari(3, seed=7), NaiveBuffer()
    for _ in range(25):
        env.step([buf], naive)
    buf.sample(16)  # the generator has moved
    torch.save(buf.state_dict(), tmp_path / "buffer.pt")
    state = torch.load(tmp_path / "buffer.pt", weights_only=True)  # as rlexp.checkpoint loads
    assert len(state["valid"]) <= buf.slots and state["store"][0].shape[0] == len(state["valid"])
    copy = FrameReplayBuffer(40, SHAPE, seed=99, num_envs=3)
    for _ in range(30):  # loading replaces whatever was there
        FakeAtari(3, seed=9).step([copy], NaiveBuffer())
    copy.load_state_dict(state)
    assert len(copy) == len(buf)
    for x, y in zip(copy.sample(16, num_batches=2), buf.sample(16, num_batches=2)):
        assert (x is None and y is None) or torch.equal(x, y)
    for _ in range(20):  # adding goes on from the same cursors (and wraps)
        env.step([buf, copy], naive)
    for x, y in zip(copy.sample(64), buf.sample(64)):
        assert (x is None and y is None) or torch.equal(x, y)
    check_against_naive(copy, env, naive)


def test_state_dict_is_compact():
    buf = FrameReplayBuffer(1000, SHAPE, num_envs=1)
    env, naive = FakeAtari(1, p_end=0.0), NaiveBuffer()
    for _ in range(10):
        env.step([buf], naive)
    assert buf.state_dict()["store"][0].shape[0] == 10 + STACK  # the reset stack and 10 frames


def test_load_state_dict_replaces_the_contents():
    source = FrameReplayBuffer(100, SHAPE, num_envs=3)
    env, naive = FakeAtari(3, seed=10), NaiveBuffer()
    for _ in range(5):
        env.step([source], naive)
    target = FrameReplayBuffer(100, SHAPE, num_envs=3)
    for _ in range(60):  # a full ring of other transitions
        FakeAtari(3, seed=11).step([target], NaiveBuffer())
    target.load_state_dict(source.state_dict())
    assert len(target) == 15
    check_against_naive(target, env, naive)


def test_load_state_dict_rejects_another_layout():
    buf = FrameReplayBuffer(40, SHAPE, num_envs=2)
    with pytest.raises(ValueError, match="num_envs"):
        FrameReplayBuffer(40, SHAPE, num_envs=1).load_state_dict(buf.state_dict())


def test_tensor_write_path_matches_the_numpy_path():
    """The code used when storage is on a GPU (torch indexing, no numpy views), run on CPU."""
    a = FrameReplayBuffer(30, SHAPE, seed=0, num_envs=3)
    b = FrameReplayBuffer(30, SHAPE, seed=0, num_envs=3)
    b._np = None
    env, naive = FakeAtari(3, seed=8), NaiveBuffer()
    for _ in range(40):  # wraps
        env.step([a, b], naive)
    assert torch.equal(a.valid, b.valid)
    for x, y in zip(a.sample(32, num_batches=2), b.sample(32, num_batches=2)):
        assert (x is None and y is None) or torch.equal(x, y)
    check_against_naive(b, env, naive)


def test_validate_catches_a_broken_contract():
    buf = FrameReplayBuffer(20, SHAPE, validate=True)
    env, naive = FakeAtari(1, p_end=0.0, p_life=0.0), NaiveBuffer()
    env.step([buf], naive)
    reset = env._reset(0)[None]
    with pytest.raises(ValueError, match="previous next_obs"):  # a reset without episode_end
        buf.add(reset, [99], [0.0], np.concatenate([reset[:, 1:], reset[:, :1]], 1), [False])
    with pytest.raises(ValueError, match="shifted"):
        buf.add(env.obs, [99], [0.0], env.obs, [False])


def test_memory_is_one_frame_per_transition():
    buf = FrameReplayBuffer(100_000, (4, 84, 84))  # torch.empty: nothing is touched here
    frame = 84 * 84
    assert buf.nbytes / buf.capacity < frame + 12  # + actions, rewards, flags, a few reset slots


def test_a_full_1m_prioritized_replay_checkpoints_within_7_3_gb():
    # torch.empty: nothing is touched; the checkpoint holds every written slot of the store, the
    # validity bytes and the sum tree's leaves (float64)
    buf = FrameReplayBuffer(1_000_000, (4, 84, 84), priority_exponent=0.5, n_step=10)
    state_bytes = sum(t.nbytes for t in buf._store) + buf.valid.nbytes + 8 * buf.priorities.tree.capacity
    assert state_bytes < 7.3e9, state_bytes
    assert buf.nbytes < 7.3e9  # in memory too: the tree's inner nodes add 8 MB more


def test_errors():
    with pytest.raises(ValueError, match="capacity"):
        FrameReplayBuffer(0, SHAPE)
    with pytest.raises(ValueError, match="capacity"):
        FrameReplayBuffer(-5, SHAPE)
    with pytest.raises(ValueError, match="3-D"):
        FrameReplayBuffer(10, (84, 84))
    with pytest.raises(ValueError, match="3-D"):
        FrameReplayBuffer(10, (4, 84, 84, 1))
    with pytest.raises(ValueError, match="num_envs"):
        FrameReplayBuffer(10, SHAPE, num_envs=0)
    buf = FrameReplayBuffer(10, SHAPE, num_envs=2)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(1)
    obs = np.zeros((1, *SHAPE), dtype=np.uint8)
    with pytest.raises(ValueError, match="shape"):
        buf.add(obs, [0], [0.0], obs, [False])
    obs2 = np.zeros((2, *SHAPE), dtype=np.uint8)
    with pytest.raises(ValueError, match="episode_end"):
        buf.add(obs2, [0, 1], [0.0, 0.0], obs2, [False, False], episode_end=[True])
