"""Property-based tests of the buffers: random sizes, env counts and episode ends keep the
invariants, checked against simple reference models.

- ReplayBuffer: holds the newest min(added, capacity) transitions; samples only those.
- FrameReplayBuffer: holds the transitions whose whole frame window (the newest frame and
  the ``stack`` before it, in their env's frame stream) is still in the ring; its samples
  rebuild exactly the obs/next_obs stacks that were added.
- both: state_dict -> fresh buffer -> load_state_dict samples identically and goes on identically.
- RolloutBuffer: add returns True exactly every ``steps`` adds; row r holds the newest add
  with index = r (mod steps), i.e. the last full rollout in order.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlexp.buffers import FrameReplayBuffer, ReplayBatch, ReplayBuffer, RolloutBuffer


@pytest.fixture(autouse=True)
def _subnormal_floats():
    """Earlier tests' runs apply device.flush_denormal process-wide; hypothesis needs subnormal floats."""
    import torch

    torch.set_flush_denormal(False)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reload(state: dict) -> dict:
    """``state`` through torch.save / torch.load(weights_only=True), as rlexp.checkpoint stores it."""
    blob = io.BytesIO()
    torch.save(state, blob)
    blob.seek(0)
    return torch.load(blob, weights_only=True)


def flat(batch: ReplayBatch) -> list[tuple]:
    """The transitions of ``batch`` (any leading shape) as (id, obs, reward, next_obs, terminated)."""
    lead = batch.actions.dim()
    fields = [f.reshape(-1, *f.shape[lead:]) for f in batch[:5]]  # the one-step fields
    return [(int(a), o.numpy(), float(r), n.numpy(), float(t)) for o, a, r, n, t in zip(*fields)]


def assert_same_batches(a: ReplayBatch, b: ReplayBatch) -> None:
    for x, y in zip(a, b):
        assert (x is None and y is None) or torch.equal(x, y)


# ---------------------------------------------------------------------------- ReplayBuffer


@st.composite
def replay_cases(draw):
    num_envs = draw(st.integers(1, 5))
    capacity = draw(st.integers(num_envs, 24))  # one add may not exceed the capacity
    adds = draw(st.integers(0, 20))
    more = draw(st.integers(0, 8))  # adds after the state_dict round trip
    terminated = draw(st.lists(st.booleans(), min_size=(adds + more) * num_envs, max_size=(adds + more) * num_envs))
    return num_envs, capacity, adds, more, terminated, draw(st.integers(0, 2**31 - 1))


class ReplayFeed:
    """Transitions whose fields all encode their id (= action); remembers what it added, in order."""

    def __init__(self, num_envs: int, terminated: list[bool], first_id: int = 0):
        self.num_envs, self.terminated, self.first_id = num_envs, terminated or [False], first_id
        self.added: dict[int, tuple] = {}
        self.order: list[int] = []

    def add(self, *buffers: ReplayBuffer) -> None:
        n = len(self.order)
        ids = np.arange(self.first_id + n, self.first_id + n + self.num_envs)
        obs = np.stack([ids, ids + 0.25, -ids], axis=1).astype(np.float32)
        next_obs = obs + 0.5
        rewards = (ids / 8).astype(np.float32)
        term = np.array([self.terminated[k % len(self.terminated)] for k in range(n, n + self.num_envs)],
                        dtype=np.float32)
        for buf in buffers:
            buf.add(obs, ids, rewards, next_obs, term)
        for k, i in enumerate(ids):
            self.added[int(i)] = (obs[k], float(rewards[k]), next_obs[k], float(term[k]))
        self.order.extend(int(i) for i in ids)

    def held(self, capacity: int) -> set[int]:
        return set(self.order[-capacity:]) if self.order else set()

    def assert_sampled_from(self, batch: ReplayBatch, held: set[int]) -> None:
        for i, obs, reward, next_obs, term in flat(batch):
            assert i in held, f"sampled transition {i}, which is not (or no longer) held"
            ref_obs, ref_reward, ref_next, ref_term = self.added[i]
            np.testing.assert_array_equal(obs, ref_obs)
            np.testing.assert_array_equal(next_obs, ref_next)
            assert (reward, term) == (ref_reward, ref_term)


@pytest.mark.slow
@SETTINGS
@given(replay_cases())
def test_replay_holds_and_samples_the_newest_capacity_transitions(case):
    num_envs, capacity, adds, more, terminated, seed = case
    buf = ReplayBuffer(capacity, (3,), np.float32, seed=seed, num_envs=num_envs)
    feed = ReplayFeed(num_envs, terminated)
    if adds == 0:
        assert len(buf) == 0
        with pytest.raises(ValueError, match="empty"):
            buf.sample(1)
    for _ in range(adds + more):
        feed.add(buf)
        assert len(buf) == buf.size == min(len(feed.order), capacity) <= capacity
        held = feed.held(capacity)
        assert set(buf.actions[: len(buf)].tolist()) == held  # every held transition, once
        feed.assert_sampled_from(buf.sample(7), held)
        feed.assert_sampled_from(buf.sample(3, num_batches=2), held)


@SETTINGS
@given(replay_cases())
def test_replay_state_dict_round_trip_samples_and_continues_identically(case):
    num_envs, capacity, adds, more, terminated, seed = case
    buf = ReplayBuffer(capacity, (3,), np.float32, seed=seed, num_envs=num_envs)
    feed = ReplayFeed(num_envs, terminated)
    for _ in range(max(adds, 1)):
        feed.add(buf)
    buf.sample(5)  # the generator has moved
    copy = ReplayBuffer(capacity, (3,), np.float32, seed=seed + 1, num_envs=num_envs)
    junk = ReplayFeed(num_envs, [True], first_id=10**6)  # other ids: loading must replace them
    for _ in range(capacity // num_envs + 1):
        junk.add(copy)
    copy.load_state_dict(reload(buf.state_dict()))
    assert (copy.pos, len(copy)) == (buf.pos, len(buf))
    assert torch.equal(copy.generator.get_state(), buf.generator.get_state())
    assert_same_batches(copy.sample(6, num_batches=2), buf.sample(6, num_batches=2))
    for _ in range(more):  # same cursor: the same slots are overwritten
        feed.add(buf, copy)
        assert_same_batches(copy.sample(8), buf.sample(8))
    feed.assert_sampled_from(copy.sample(32), feed.held(capacity))


@given(st.integers(1, 8), st.integers(1, 8))
@settings(max_examples=20, deadline=None)
def test_replay_refuses_more_transitions_than_its_capacity_at_once(capacity, extra):
    buf = ReplayBuffer(capacity, (3,), np.float32, num_envs=capacity + extra)
    with pytest.raises(ValueError, match="capacity"):
        ReplayFeed(capacity + extra, [False] * (capacity + extra)).add(buf)
    assert len(buf) == 0


# ---------------------------------------------------------------------------- FrameReplayBuffer

H, W = 2, 3


class FrameStreams:
    """``num_envs`` frame-stacking envs, and the frame-stream model the buffer documents.

    Every frame is distinct (its first pixels encode a global frame number), so a stack
    built from a wrong, stale or other-env frame shows. Per env, ``stream`` lists the frames
    the buffer stores: an episode's reset stack, then each step's new frame. Transition ``i``
    sits at position ``pos[i]`` of its env's stream (its newest ``next_obs`` frame).
    """

    def __init__(self, num_envs: int, stack: int, rng: np.random.Generator):
        self.num_envs, self.stack, self.rng = num_envs, stack, rng
        self.frames_made = 0
        self.stream: list[list[np.ndarray]] = [[] for _ in range(num_envs)]
        self.fresh = np.ones(num_envs, dtype=bool)
        self.obs = np.stack([self._reset() for _ in range(num_envs)])
        self.added: dict[int, tuple] = {}  # id -> (obs, reward, next_obs, terminated) as added
        self.pos: dict[int, tuple[int, int]] = {}  # id -> (env, stream position)
        self.next_id = 0

    def _frame(self) -> np.ndarray:
        f = self.rng.integers(0, 256, (H, W), dtype=np.uint8)
        f[0, 0], f[0, 1] = self.frames_made % 256, self.frames_made // 256
        self.frames_made += 1
        return f

    def _reset(self) -> np.ndarray:
        first = self._frame()
        padding = self.rng.integers(3)  # the buffer must give back any padding byte for byte
        pad = [np.zeros_like(first)] * (self.stack - 1) if padding == 0 else (
            [first] * (self.stack - 1) if padding == 1 else [self._frame() for _ in range(self.stack - 1)])
        return np.stack([*pad, first])

    def step(self, buffers, ends: list[bool], lives: list[bool]) -> None:
        n = self.num_envs
        ids = np.arange(self.next_id, self.next_id + n)
        self.next_id += n
        next_obs = np.stack([np.concatenate([self.obs[e, 1:], self._frame()[None]]) for e in range(n)])
        end, life = np.array(ends, dtype=bool), np.array(lives, dtype=bool)
        terminated = (end | life) & (ids % 3 != 0)  # some ends are truncations; some life losses are terminal
        rewards = (ids / 4).astype(np.float32)
        for buf in buffers:
            buf.add(self.obs, ids, rewards, next_obs, terminated, episode_end=end)
        for e, i in enumerate(ids):
            i = int(i)
            if self.fresh[e]:
                self.stream[e].extend(self.obs[e])
            self.stream[e].append(next_obs[e, -1])
            self.pos[i] = (e, len(self.stream[e]) - 1)
            self.added[i] = (self.obs[e].copy(), float(rewards[e]), next_obs[e].copy(), float(terminated[e]))
        self.fresh = end
        self.obs = np.stack([self._reset() if end[e] else next_obs[e] for e in range(n)])

    def held(self, slots: int) -> set[int]:
        """Transitions whose window (stream positions p - stack .. p) is among their env's last ``slots`` frames."""
        return {i for i, (e, p) in self.pos.items() if p - self.stack >= len(self.stream[e]) - slots}

    def window(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """obs and next_obs of transition ``i`` rebuilt from the stream model."""
        e, p = self.pos[i]
        s = self.stream[e]
        return np.stack(s[p - self.stack : p]), np.stack(s[p - self.stack + 1 : p + 1])

    def assert_sampled_from(self, batch: ReplayBatch, held: set[int]) -> None:
        for i, obs, reward, next_obs, term in flat(batch):
            assert i in held, f"sampled transition {i}, which is not (or no longer) held"
            ref_obs, ref_reward, ref_next, ref_term = self.added[i]
            np.testing.assert_array_equal(obs, ref_obs, err_msg=f"obs of transition {i}")
            np.testing.assert_array_equal(next_obs, ref_next, err_msg=f"next_obs of transition {i}")
            assert (reward, term) == (ref_reward, ref_term)
            model_obs, model_next = self.window(i)
            np.testing.assert_array_equal(model_obs, ref_obs)  # the model's stream is the envs' frames
            np.testing.assert_array_equal(model_next, ref_next)


@st.composite
def frame_cases(draw):
    num_envs = draw(st.integers(1, 4))
    stack = draw(st.integers(1, 4))
    capacity = draw(st.integers(1, 24))
    steps = draw(st.integers(1, 30))
    more = draw(st.integers(0, 10))
    p_end = draw(st.sampled_from([0.0, 0.1, 0.3, 1.0]))  # 0: one long episode; 1: one-step episodes
    n = (steps + more) * num_envs
    ends = draw(st.lists(st.floats(0, 1, exclude_max=True).map(lambda u: u < p_end), min_size=n, max_size=n))
    lives = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return num_envs, stack, capacity, steps, more, ends, lives, draw(st.integers(0, 2**31 - 1))


def _rows(flags: list[bool], num_envs: int, t: int) -> list[bool]:
    return flags[t * num_envs : (t + 1) * num_envs]


@pytest.mark.slow
@SETTINGS
@given(frame_cases())
def test_frames_hold_exactly_the_documented_transitions_and_rebuild_their_stacks(case):
    num_envs, stack, capacity, steps, _, ends, lives, seed = case
    buf = FrameReplayBuffer(capacity, (stack, H, W), seed=seed, num_envs=num_envs, validate=True)
    assert buf.capacity == -(-capacity // num_envs) * num_envs and buf.slots == buf.capacity // num_envs + stack
    env = FrameStreams(num_envs, stack, np.random.default_rng(seed))
    for t in range(steps):
        env.step([buf], _rows(ends, num_envs, t), _rows(lives, num_envs, t))
        held = env.held(buf.slots)
        assert len(buf) == len(held) <= buf.capacity
        if not any(ends[: (t + 1) * num_envs]):  # one long episode per env fills the capacity exactly
            assert len(buf) == num_envs * min(t + 1, buf.capacity // num_envs)
        everything = buf._gather(buf._valid_indices())
        assert sorted(everything.actions.tolist()) == sorted(held)  # every held transition, once
        env.assert_sampled_from(everything, held)
        env.assert_sampled_from(buf.sample(5, num_batches=2), held)


@pytest.mark.slow
@SETTINGS
@given(frame_cases())
def test_frames_state_dict_round_trip_samples_and_continues_identically(case):
    num_envs, stack, capacity, steps, more, ends, lives, seed = case
    shape = (stack, H, W)
    buf = FrameReplayBuffer(capacity, shape, seed=seed, num_envs=num_envs)
    env = FrameStreams(num_envs, stack, np.random.default_rng(seed))
    for t in range(steps):
        env.step([buf], _rows(ends, num_envs, t), _rows(lives, num_envs, t))
    buf.sample(4)  # the generator has moved
    copy = FrameReplayBuffer(capacity, shape, seed=seed + 1, num_envs=num_envs)
    other = FrameStreams(num_envs, stack, np.random.default_rng(seed + 1))
    other.next_id = 10**6  # other ids: loading must replace them
    for _ in range(buf.slots + 1):
        other.step([copy], [False] * num_envs, [False] * num_envs)
    copy.load_state_dict(reload(buf.state_dict()))
    assert len(copy) == len(buf)
    assert torch.equal(copy.valid, buf.valid)
    assert_same_batches(copy.sample(6, num_batches=2), buf.sample(6, num_batches=2))
    for t in range(steps, steps + more):  # same cursors and episode state: the same slots are written
        env.step([buf, copy], _rows(ends, num_envs, t), _rows(lives, num_envs, t))
        assert len(copy) == len(buf) == len(env.held(buf.slots))
        assert_same_batches(copy.sample(8), buf.sample(8))
    env.assert_sampled_from(copy.sample(16), env.held(buf.slots))


# ---------------------------------------------------------------------------- RolloutBuffer


@st.composite
def rollout_cases(draw):
    return (draw(st.integers(1, 8)), draw(st.integers(1, 4)), draw(st.integers(0, 30)),
            draw(st.sampled_from(["discrete", "continuous"])))


def _rollout(steps: int, num_envs: int, actions: str) -> RolloutBuffer:
    if actions == "discrete":
        return RolloutBuffer(steps, num_envs, (2,), np.float32, (), torch.int64)
    return RolloutBuffer(steps, num_envs, (2,), np.float32, (2,), torch.float32)


def _step(t: int, num_envs: int, actions: str) -> tuple:
    """The t-th vector step; every value encodes (t, env)."""
    e = np.arange(num_envs)
    obs = np.stack([np.full(num_envs, t), e], axis=1).astype(np.float32)
    action = torch.as_tensor(t * 10 + e) if actions == "discrete" else torch.as_tensor(
        np.stack([np.full(num_envs, t), -e], axis=1), dtype=torch.float32)
    value = torch.as_tensor(t + e / 10, dtype=torch.float32)
    return (torch.as_tensor(obs), action, -value, value, value * 2, torch.as_tensor((t + e) % 2, dtype=torch.float32))


def _assert_row(buf: RolloutBuffer, row: int, t: int, num_envs: int, actions: str) -> None:
    obs, action, logprob, value, reward, done = _step(t, num_envs, actions)
    got = (buf.obs[row], buf.actions[row], buf.logprobs[row], buf.values[row], buf.rewards[row], buf.dones[row])
    for name, x, y in zip(("obs", "actions", "logprobs", "values", "rewards", "dones"), got, (
            obs, action, logprob, value, reward, done)):
        assert torch.equal(x, y.to(x.dtype)), f"row {row} {name}: expected step {t}"


@SETTINGS
@given(rollout_cases())
def test_rollout_is_full_exactly_every_steps_adds_and_holds_the_last_rollout_in_order(case):
    steps, num_envs, adds, actions = case
    buf = _rollout(steps, num_envs, actions)
    for t in range(adds):
        assert buf.add(*_step(t, num_envs, actions)) == ((t + 1) % steps == 0)
        assert buf.pos == (t + 1) % steps
    for row in range(min(adds, steps)):  # row r: the newest add t with t = r (mod steps)
        _assert_row(buf, row, row + (adds - 1 - row) // steps * steps, num_envs, actions)
    if adds and adds % steps == 0:  # just full: the last rollout, steps adds-steps .. adds-1 in order
        for row in range(steps):
            _assert_row(buf, row, adds - steps + row, num_envs, actions)


@SETTINGS
@given(rollout_cases(), st.integers(0, 12))
def test_rollout_state_dict_round_trip_continues_identically(case, more):
    steps, num_envs, adds, actions = case
    buf = _rollout(steps, num_envs, actions)
    for t in range(adds):
        buf.add(*_step(t, num_envs, actions))
    copy = _rollout(steps, num_envs, actions)
    for t in range(steps - 1):  # rows that loading must replace (or the next adds overwrite)
        copy.add(*_step(1000 + t, num_envs, actions))
    copy.load_state_dict(reload(buf.state_dict()))
    assert copy.pos == buf.pos
    for name in RolloutBuffer.FIELDS:
        assert torch.equal(getattr(copy, name)[: buf.pos], getattr(buf, name)[: buf.pos]), name
    for t in range(adds, adds + more):
        assert copy.add(*_step(t, num_envs, actions)) == buf.add(*_step(t, num_envs, actions))
        if buf.pos == 0:  # a rollout completed after loading: every row is the same
            for name in RolloutBuffer.FIELDS:
                assert torch.equal(getattr(copy, name), getattr(buf, name)), name
