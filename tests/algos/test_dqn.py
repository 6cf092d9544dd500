import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rlexp.algos.dqn import DQN, td_loss, td_targets
from rlexp.config import DeviceConfig, DQNConfig, NetworkConfig
from rlexp.schedules import crossed, linear_schedule

OBS = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
ACTIONS = gym.spaces.Discrete(3)


def make_dqn(num_envs: int = 1, **overrides) -> DQN:
    cfg = DQNConfig(**{"learning_starts_steps": 0, "batch_size": 8, **overrides})
    return DQN(cfg, OBS, ACTIONS, NetworkConfig(hidden_sizes=[16]), torch.device("cpu"), seed=0, num_envs=num_envs)


class FixedQ(nn.Module):
    """A mock Q-network: Q(s, a) = 1 for ``best`` and 0 otherwise, whatever s."""

    def __init__(self, best: int, n: int = 3):
        super().__init__()
        self.register_buffer("q", torch.eye(n)[best])

    def forward(self, obs):
        return self.q.expand(obs.shape[0], -1)


def feed(algo: DQN, steps: int, start: int = 0) -> list[dict]:
    """``steps`` vector steps of dummy experience; returns the non-empty update metrics."""
    n = algo.num_envs
    out = []
    for k in range(steps):
        obs = np.zeros((n, 4), np.float32)
        metrics = algo.observe(obs, np.zeros(n, int), np.ones(n, np.float32), obs, np.zeros(n, np.float32),
                               np.zeros(n, bool), start + k * n)
        if metrics:
            out.append(metrics)
    return out


# ------------------------------------------------------------------ schedules and targets


def test_linear_schedule():
    assert linear_schedule(1.0, 0.1, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.1, 100, 50) == pytest.approx(0.55)
    assert linear_schedule(1.0, 0.1, 100, 100) == pytest.approx(0.1)
    assert linear_schedule(1.0, 0.1, 100, 10_000) == pytest.approx(0.1)
    assert linear_schedule(1.0, 0.1, 0, 0) == pytest.approx(0.1)


def test_epsilon_follows_the_config():
    algo = make_dqn(epsilon_start=1.0, epsilon_end=0.05, epsilon_decay_steps=1000)
    assert algo.schedules(0)["train/epsilon"] == 1.0
    assert algo.schedules(500)["train/epsilon"] == pytest.approx(0.525)
    assert algo.schedules(5000)["train/epsilon"] == pytest.approx(0.05)


def test_td_targets_terminal_vs_truncated():
    rewards = torch.tensor([1.0, 1.0, 1.0])
    next_q = torch.tensor([10.0, 10.0, 10.0])
    # terminated: no bootstrap; truncated (terminated=0, next_q from the real final obs): bootstrap
    terminated = torch.tensor([1.0, 0.0, 0.0])
    out = td_targets(rewards, terminated, next_q, gamma=0.9)
    assert out.tolist() == pytest.approx([1.0, 10.0, 10.0])


def test_crossed():
    assert crossed(9, 10, 10) and not crossed(10, 11, 10) and crossed(8, 12, 10) and not crossed(0, 9, 10)


# ------------------------------------------------------------------ acting with a mock network


def test_greedy_action_comes_from_the_network():
    algo = make_dqn(epsilon_start=0.0, epsilon_end=0.0)
    algo.q = FixedQ(best=2)
    assert algo.act(np.zeros((5, 4), np.float32), step=10).tolist() == [2] * 5
    assert algo.predict(np.zeros((5, 4), np.float32)).tolist() == [2] * 5


def test_random_actions_before_learning_starts():
    algo = make_dqn(learning_starts_steps=1000, epsilon_start=0.0, epsilon_end=0.0)
    algo.q = FixedQ(best=2)
    actions = algo.act(np.zeros((300, 4), np.float32), step=0)
    assert set(actions.tolist()) == {0, 1, 2}
    assert algo.act(np.zeros((5, 4), np.float32), step=1000).tolist() == [2] * 5


def test_epsilon_mixes_random_and_greedy():
    algo = make_dqn(epsilon_start=0.5, epsilon_end=0.5)
    algo.q = FixedQ(best=1)
    actions = algo.act(np.zeros((4000, 4), np.float32), step=5)
    # greedy share is 1 - eps + eps/3
    assert np.mean(actions == 1) == pytest.approx(0.5 + 0.5 / 3, abs=0.03)


def test_eval_epsilon():
    algo = make_dqn(epsilon_eval=1.0)
    algo.q = FixedQ(best=1)
    assert set(algo.predict(np.zeros((300, 4), np.float32)).tolist()) == {0, 1, 2}


# ------------------------------------------------------------------ bookkeeping


def test_replay_gets_every_transition():
    algo = make_dqn(num_envs=4, train_interval_steps=10_000)
    feed(algo, 25)
    assert len(algo.buffer) == 100


def test_update_schedule_counts_exactly():
    algo = make_dqn(learning_starts_steps=100, train_interval_steps=16, updates_per_train=3,
                    target_update_interval_steps=50)
    events = feed(algo, 400)
    # training phases at agent steps 112, 128, ..., 400 (multiples of 16 above 100)
    phases = len([s for s in range(1, 401) if s % 16 == 0 and s > 100])
    assert len(events) == phases
    assert algo.updates == 3 * phases
    assert algo.target_syncs == 400 // 50


def test_update_schedule_with_parallel_envs():
    algo = make_dqn(num_envs=4, learning_starts_steps=0, train_interval_steps=8, updates_per_train=2,
                    target_update_interval_steps=10)
    feed(algo, 25)  # agent steps 0..100 in strides of 4
    assert algo.updates == 2 * (100 // 8)
    assert algo.target_syncs == 100 // 10


def test_hard_target_sync_copies_online_weights():
    algo = make_dqn(train_interval_steps=1, target_update_interval_steps=1000, lr=1e-2)
    feed(algo, 20)
    online, target = algo.q.state_dict(), algo.q_target.state_dict()
    assert any(not torch.equal(online[k], target[k]) for k in online)  # learning moved the online net
    algo.sync_target()
    assert all(torch.equal(online[k], algo.q_target.state_dict()[k]) for k in online)


def test_polyak_target_sync():
    algo = make_dqn(tau=0.25, train_interval_steps=10_000)
    before = {k: v.clone() for k, v in algo.q_target.state_dict().items()}
    with torch.no_grad():
        for p in algo.q.parameters():
            p.add_(1.0)
    algo.sync_target()
    for k, v in algo.q_target.state_dict().items():
        expected = before[k] + 0.25 * (algo.q.state_dict()[k] - before[k])
        assert torch.allclose(v, expected, atol=1e-6)


def test_target_network_is_frozen():
    algo = make_dqn()
    assert not any(p.requires_grad for p in algo.q_target.parameters())


@pytest.mark.parametrize("double_dqn", [False, True])
@pytest.mark.parametrize("loss", ["huber", "mse"])
def test_training_reduces_td_error_on_a_fixed_batch(double_dqn, loss):
    torch.manual_seed(0)
    algo = make_dqn(double_dqn=double_dqn, loss=loss, lr=1e-2, train_interval_steps=10_000, gamma=0.0)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(64, 4)).astype(np.float32)
    rewards = rng.normal(size=64).astype(np.float32)
    algo.buffer.add(obs, rng.integers(3, size=64), rewards, obs, np.zeros(64, np.float32))
    first = algo.train(5)["loss/td"]
    for _ in range(40):
        last = algo.train(5)["loss/td"]
    assert last < 0.5 * first
    assert algo.updates == 205


def test_batched_targets_equal_per_update_targets():
    """The burst shortcut (one target forward per training phase) changes no number."""
    torch.manual_seed(0)
    a, b = make_dqn(lr=1e-3), make_dqn(lr=1e-3)
    b.q.load_state_dict(a.q.state_dict())
    b.q_target.load_state_dict(a.q_target.state_dict())
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(128, 4)).astype(np.float32)
    for algo in (a, b):
        algo.buffer.add(obs, rng.integers(3, size=128) * 0, np.ones(128, np.float32), obs, np.zeros(128, np.float32))
    a.train(6)
    for _ in range(6):
        b.train(1)
    for k, v in a.q.state_dict().items():
        assert torch.allclose(v, b.q.state_dict()[k], atol=1e-6)


def test_gradient_clip_bounds_the_update():
    algo = make_dqn(max_grad_norm=1e-3, lr=1.0, train_interval_steps=10_000)
    obs = np.ones((8, 4), np.float32)
    algo.buffer.add(obs, np.zeros(8, int), np.full(8, 1e6, np.float32), obs, np.ones(8, np.float32))
    before = algo.flat_params.detach().clone()
    algo.train(1)
    # Adam's first step moves each weight by ~lr whatever the gradient's scale; the clip
    # shows in the stored gradient's norm
    assert torch.linalg.vector_norm(algo.flat_params.grad) <= 1e-3 * 1.0001
    assert not torch.equal(before, algo.flat_params.detach())


def test_state_dict_round_trip():
    a = make_dqn(train_interval_steps=4)
    feed(a, 40)
    b = make_dqn()
    b.load_state_dict(a.state_dict())
    assert b.updates == a.updates and b.target_syncs == a.target_syncs
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    assert np.array_equal(a.greedy(obs), b.greedy(obs))
    assert np.array_equal(a.act(obs, 100), b.act(obs, 100))  # same RNG stream


def test_flat_parameters_are_the_layers_parameters():
    algo = make_dqn()
    total = sum(p.numel() for p in algo.q.parameters())
    assert algo.flat_params.numel() == total
    with torch.no_grad():
        algo.flat_params.zero_()
    assert all(torch.count_nonzero(p) == 0 for p in algo.q.parameters())


def test_dqn_refuses_continuous_actions():
    from rlexp.config import ConfigError

    with pytest.raises(ConfigError, match="discrete action space"):
        DQN(DQNConfig(), OBS, gym.spaces.Box(-1, 1, (2,)), NetworkConfig(), torch.device("cpu"), 0, 1)


def test_evaluation_does_not_touch_the_training_rng():
    a, b = make_dqn(epsilon_eval=0.5), make_dqn(epsilon_eval=0.5)
    obs = np.zeros((50, 4), np.float32)
    b.predict(obs)
    b.predict(obs)
    assert np.array_equal(a.act(obs, 10), b.act(obs, 10))


def test_replay_placement():
    from rlexp.algos.dqn import replay_bytes, replay_device

    frames = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert 7.0e9 < replay_bytes(1_000_000, frames, frames=True) < 7.1e9
    assert replay_bytes(1_000_000, frames, frames=False) > 56e9
    cuda = torch.device("cuda")
    assert replay_device("auto", torch.device("cpu"), 10) == torch.device("cpu")
    assert replay_device("auto", cuda, 7e9, free_bytes=80e9) == cuda  # fits: stays with the updates
    assert replay_device("auto", cuda, 7e9, free_bytes=6e9) == torch.device("cpu")  # pinned host instead
    assert replay_device("host", cuda, 10, free_bytes=80e9) == torch.device("cpu")
    assert replay_device("device", cuda, 7e9, free_bytes=1e9) == cuda


def test_amp_and_compile_train(tmp_path):
    """bfloat16 autocast and torch.compile run the same update path (here on CPU)."""
    from rlexp.config import DeviceConfig

    for compute in (DeviceConfig(amp=True), DeviceConfig(compile=True)):
        cfg = DQNConfig(learning_starts_steps=0, batch_size=8, train_interval_steps=10_000)
        algo = DQN(cfg, OBS, ACTIONS, NetworkConfig(hidden_sizes=[16]), torch.device("cpu"), 0, 1, compute=compute)
        obs = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
        algo.buffer.add(obs, np.zeros(32, int), np.ones(32, np.float32), obs, np.zeros(32, np.float32))
        metrics = algo.train(3)
        assert np.isfinite(metrics["loss/td"]) and algo.updates == 3
        assert algo.predict(obs[:4]).shape == (4,)


# ------------------------------------------------------------------ the fast path against the reference

def _dqn_pair(**settings_):
    """Two identical DQNs (same seed, same weights), the first on the fast path, the second not."""
    network = NetworkConfig(hidden_sizes=settings_.pop("hidden"), activation=settings_.pop("activation"))
    cfg = DQNConfig(**{"learning_starts_steps": 0, "batch_size": 8, **settings_})
    pair = []
    for mode in ("auto", "off"):
        torch.manual_seed(0)  # the networks' initial weights
        pair.append(DQN(cfg, OBS, ACTIONS, network, torch.device("cpu"), seed=3, num_envs=2,
                        compute=DeviceConfig(fast_path=mode)))
    fast, reference = pair
    assert fast.manual_grad and not reference.manual_grad
    assert (fast.update_path, reference.update_path) == ("hand-written", "autograd")
    assert torch.equal(fast.flat_params, reference.flat_params)
    return fast, reference


SETTINGS = dict(loss=st.sampled_from(["huber", "mse"]), activation=st.sampled_from(["relu", "tanh"]),
                hidden=st.lists(st.integers(1, 24), min_size=1, max_size=3), seed=st.integers(0, 2**16))


@given(batch=st.integers(1, 40), scale=st.sampled_from([0.1, 1.0, 10.0]), **SETTINGS)
@settings(max_examples=25, deadline=None)
def test_the_hand_written_td_gradient_is_autograds(batch, scale, loss, activation, hidden, seed):
    """Over random batches, losses and MLPs, with TD errors on both sides of the Huber kink."""
    fast, reference = _dqn_pair(loss=loss, activation=activation, hidden=hidden)
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(batch, 4, generator=g)
    actions = torch.randint(0, 3, (batch,), generator=g)
    target = scale * torch.randn(batch, generator=g)
    q = reference.q_fn(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
    reference.flat_params.grad.zero_()
    td_loss(q, target, loss).backward()
    fast.flat_params.grad.fill_(3.0)  # every entry must be written, not accumulated
    q_fast = fast._manual_backward(obs, actions, target)
    assert torch.equal(q_fast, q.detach())
    assert torch.allclose(fast.flat_params.grad, reference.flat_params.grad, rtol=1e-5, atol=1e-7)


@given(double=st.booleans(), clip=st.sampled_from([None, 0.05, 10.0]), updates=st.integers(1, 3), **SETTINGS)
@settings(max_examples=12, deadline=None)
def test_training_on_the_fast_path_learns_what_autograd_learns(double, clip, updates, loss, activation, hidden, seed):
    """Whole training phases (targets, clipping, Adam) on the same experience end at the same weights."""
    fast, reference = _dqn_pair(loss=loss, activation=activation, hidden=hidden, double_dqn=double,
                                max_grad_norm=clip, updates_per_train=updates, train_interval_steps=1)
    rng = np.random.default_rng(seed)
    for k in range(12):
        obs, nxt = rng.standard_normal((2, 4), np.float32), rng.standard_normal((2, 4), np.float32)
        step = (rng.integers(0, 3, 2), rng.standard_normal(2).astype(np.float32), nxt, rng.random(2) < 0.2,
                np.zeros(2, bool), 2 * k)
        for algo in (fast, reference):
            algo.observe(obs, *step)
    assert fast.updates == reference.updates > 0
    assert torch.allclose(fast.flat_params, reference.flat_params, rtol=1e-5, atol=1e-6)
