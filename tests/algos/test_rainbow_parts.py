"""The DQN family's parts (n-step, prioritized replay, dueling, noisy layers, C51, QR-DQN):
each one's math against a plain computation, and every combination trains and resumes."""

import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlexp.algos.dqn import DQN
from rlexp.algos.dqn_parts import project_distribution, quantile_huber_loss, quantile_huber_loss_sorted, random_shift
from rlexp.config import DeviceConfig, DQNConfig, NetworkConfig
from rlexp.errors import ConfigError
from rlexp.networks import build_q_network
from rlexp.networks.q import NoisyLinear, QNetwork

OBS = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
FRAMES = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
ACTIONS = gym.spaces.Discrete(3)


def make(**overrides) -> DQN:
    cfg = DQNConfig(**{"learning_starts_steps": 0, "batch_size": 8, "train_interval_steps": 1, **overrides})
    return DQN(cfg, OBS, ACTIONS, NetworkConfig(hidden_sizes=[16, 16]), torch.device("cpu"), seed=0, num_envs=2,
               total_steps=1000)


def feed(algo: DQN, steps: int, seed: int = 0, start: int = 0) -> list[dict]:
    """Random experience with episode ends; returns the update metrics."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(steps):
        obs, next_obs = rng.uniform(-1, 1, (2, 4)).astype(np.float32), rng.uniform(-1, 1, (2, 4)).astype(np.float32)
        terminated = rng.random(2) < 0.1
        metrics = algo.observe(obs, rng.integers(0, 3, 2), rng.normal(size=2).astype(np.float32), next_obs,
                               terminated.astype(np.float32), rng.random(2) < 0.05, start + 2 * k)
        if metrics:
            out.append(metrics)
    return out


# ------------------------------------------------------------------ the math


def test_c51_projection_matches_a_loop_and_keeps_the_mass():
    rng = np.random.default_rng(0)
    support = torch.linspace(-2.0, 2.0, 5)
    probs = torch.softmax(torch.tensor(rng.normal(size=(64, 5)), dtype=torch.float32), dim=-1)
    rewards = torch.tensor(rng.choice([-3.0, -1.0, 0.0, 0.5, 1.0, 2.5], size=64), dtype=torch.float32)
    bootstrap = torch.tensor(rng.choice([0.0, 0.5, 0.9, 1.0], size=64), dtype=torch.float32)
    got = project_distribution(rewards, bootstrap, probs, support)
    expected = np.zeros((64, 5))
    z, dz = support.numpy(), 1.0
    for i in range(64):
        for j in range(5):
            tz = min(max(rewards[i].item() + bootstrap[i].item() * z[j], -2.0), 2.0)
            b = (tz + 2.0) / dz
            lo, hi = int(np.floor(b)), int(np.ceil(b))
            if lo == hi:
                expected[i, lo] += probs[i, j].item()
            else:
                expected[i, lo] += probs[i, j].item() * (hi - b)
                expected[i, hi] += probs[i, j].item() * (b - lo)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(got.sum(-1).numpy(), 1.0, atol=1e-6)


def test_quantile_huber_loss_matches_the_papers_sum():
    rng = np.random.default_rng(1)
    theta, target = rng.normal(size=(3, 4)), rng.normal(size=(3, 6))
    got = quantile_huber_loss(torch.tensor(theta), torch.tensor(target))
    for b in range(3):
        total = 0.0
        for i in range(4):
            tau = (2 * i + 1) / 8
            for j in range(6):
                u = target[b, j] - theta[b, i]
                huber = 0.5 * u * u if abs(u) <= 1 else abs(u) - 0.5
                total += abs(tau - (u < 0)) * huber / 6
        assert got[b].item() == pytest.approx(total)


@pytest.mark.parametrize("batch,quantiles,samples,kappa", [(3, 4, 6, 1.0), (16, 200, 200, 1.0), (5, 7, 3, 0.5)])
def test_the_sorted_quantile_loss_equals_the_pairwise_one_in_value_and_gradient(batch, quantiles, samples, kappa):
    """The fast path (prefix sums over sorted targets) against the reference formula, with
    samples tied with a quantile and at exactly +/- kappa from one (the runs' boundaries)."""
    g = torch.Generator().manual_seed(batch)
    theta = (3 * torch.randn(batch, quantiles, generator=g)).requires_grad_(True)
    target = 3 * torch.randn(batch, samples, generator=g)
    target[0, 0] = theta[0, 0].detach()
    target[0, 1] = theta[0, 1].detach() + kappa
    target[0, 2] = theta[0, 2].detach() - kappa
    weights = torch.rand(batch, generator=g)  # importance weights reach the quantiles' gradient
    expected = quantile_huber_loss(theta, target, kappa)
    (expected_grad,) = torch.autograd.grad((weights * expected).sum(), theta)
    got = quantile_huber_loss_sorted(theta, target, kappa)
    (got_grad,) = torch.autograd.grad((weights * got).sum(), theta)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_grad, expected_grad, rtol=1e-5, atol=1e-6)


def test_qr_dqn_takes_the_same_steps_with_the_sorted_loss_as_with_the_reference():
    """device.fast_path=auto (the sorted loss) and off (the pairwise reference): the same
    parameters after a few updates, from the same seed and experience."""
    params = []
    for mode in ("auto", "off"):
        cfg = DQNConfig(learning_starts_steps=0, batch_size=8, train_interval_steps=1, distributional="qr", num_atoms=20)
        torch.manual_seed(0)  # the network's initial weights
        algo = DQN(cfg, OBS, ACTIONS, NetworkConfig(hidden_sizes=[16, 16]), torch.device("cpu"), seed=0, num_envs=2,
                   total_steps=1000, compute=DeviceConfig(fast_path=mode))
        assert feed(algo, 10)
        params.append(algo.flat_params.detach().clone())
    torch.testing.assert_close(params[0], params[1], rtol=1e-5, atol=1e-6)


def test_random_shift_is_a_crop_of_the_edge_padded_frames_times_one_intensity_per_image():
    frames = torch.randint(0, 256, (6, 2, 9, 7), dtype=torch.uint8)
    out = random_shift(frames, torch.Generator().manual_seed(3), pad=2, intensity=0.05)
    g = torch.Generator().manual_seed(3)
    dy, dx = torch.randint(0, 5, (6,), generator=g), torch.randint(0, 5, (6,), generator=g)
    scale = 1 + 0.05 * torch.randn((6, 1, 1, 1), generator=g).clamp(-2, 2)
    padded = np.pad(frames.numpy() / 255.0, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    for i in range(6):
        crop = padded[i, :, dy[i]:dy[i] + 9, dx[i]:dx[i] + 7] * scale[i].item()
        np.testing.assert_allclose(out[i].numpy(), crop, rtol=1e-6, atol=1e-6)


def test_noisy_linear_is_its_mean_in_eval_and_the_factorized_formula_in_training():
    layer = NoisyLinear(5, 3, std_init=0.5)
    x = torch.randn(7, 5)
    g = torch.Generator().manual_seed(0)
    layer.sample_noise(g)
    f = layer.noise_out.outer(layer.noise_in)
    expected = x @ (layer.weight_mu + layer.weight_sigma * f).T + layer.bias_mu + layer.bias_sigma * layer.noise_out
    assert torch.allclose(layer(x), expected, atol=1e-6)
    assert torch.allclose(layer.weight_sigma, torch.full((3, 5), 0.5 / 5**0.5))
    layer.eval()
    assert torch.allclose(layer(x), x @ layer.weight_mu.T + layer.bias_mu)
    # the same generator state gives the same noise
    again = NoisyLinear(5, 3)
    again.sample_noise(torch.Generator().manual_seed(0))
    assert torch.equal(again.noise_in, layer.noise_in)


def test_dueling_combines_value_and_centred_advantage():
    net = build_q_network(NetworkConfig(hidden_sizes=[8, 8]), OBS, ACTIONS, dueling=True)
    assert isinstance(net, QNetwork)
    obs = torch.randn(5, 4)
    x = net.hidden(net.trunk(obs))
    a, v = net.advantage(x), net.value(x)
    assert torch.allclose(net(obs), v + a - a.mean(1, keepdim=True), atol=1e-6)


def test_the_parts_keep_the_plain_networks_layers():
    plain = build_q_network(NetworkConfig(hidden_sizes=[32, 16]), OBS, ACTIONS)
    parts = build_q_network(NetworkConfig(hidden_sizes=[32, 16]), OBS, ACTIONS, atoms=1, noisy=True)
    means = [p.shape for name, p in parts.named_parameters() if not name.endswith("sigma")]
    assert [p.shape for p in plain.parameters()] == means
    cnn = build_q_network(NetworkConfig(), FRAMES, ACTIONS, atoms=51, dueling=True)
    assert cnn(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape == (2, 3, 51)


# ------------------------------------------------------------------ the learner


PARTS = {
    "n_step": {"n_step": 3},
    "prioritized": {"replay": "prioritized"},
    "dueling": {"dueling": True},
    "noisy": {"noisy": True, "epsilon_start": 0.0, "epsilon_end": 0.0},
    "c51": {"distributional": "c51", "v_min": -5.0, "v_max": 5.0},
    "qr": {"distributional": "qr", "num_atoms": 8},
    "double": {"double_dqn": True},
}


@pytest.mark.parametrize("names", [(name,) for name in PARTS] + [tuple(PARTS)[:-2] + ("double",),
                                   ("n_step", "prioritized", "noisy", "qr", "dueling")])
def test_every_part_alone_and_rainbow_learn_and_resume_exactly(names):
    if "c51" in names and "qr" in names:
        names = tuple(n for n in names if n != "qr")
    settings = {k: v for name in names for k, v in PARTS[name].items()}
    algo = make(**settings)
    metrics = feed(algo, 30)
    assert metrics and all(np.isfinite(m["loss/td"]) for m in metrics)
    if "prioritized" in names:
        assert 0.4 < metrics[-1]["train/importance_exponent"] < 0.5
        assert float(algo.buffer.priorities.tree.total) > 0
    # resume: a copy from the state continues bit for bit (the noise and the sum tree are state)
    copy = make(**settings)
    copy.load_state_dict(algo.state_dict())
    copy.load_buffer_state(algo.buffer_state())
    a, b = feed(algo, 6, seed=5, start=60), feed(copy, 6, seed=5, start=60)
    assert a == b
    for x, y in zip(algo.q.state_dict().values(), copy.q.state_dict().values()):
        assert torch.equal(x, y)


def test_noisy_evaluation_is_deterministic_and_leaves_the_noise_alone():
    algo = make(**PARTS["noisy"])
    feed(algo, 10)
    state = algo.noise.get_state()
    obs = np.random.default_rng(0).uniform(-1, 1, (16, 4)).astype(np.float32)
    first = algo.predict(obs)
    assert np.array_equal(first, algo.predict(obs)) and torch.equal(state, algo.noise.get_state())
    acting = [algo.act(obs, 100) for _ in range(5)]
    assert any(not np.array_equal(acting[0], a) for a in acting[1:])  # training actions follow the noise


def test_prioritized_updates_hand_back_td_errors():
    algo = make(replay="prioritized", priority_exponent=1.0)
    feed(algo, 5)
    leaves = algo.buffer.priorities.tree.priorities(torch.arange(10))
    assert not torch.all(leaves == leaves[0])  # sampled transitions got their own errors


@pytest.mark.parametrize("overrides,message", [
    ({"n_step": 0}, "algo.n_step must be >= 1"),
    ({"distributional": "c51", "v_min": 1.0, "v_max": 1.0}, "algo.v_min (1.0) must be below algo.v_max"),
    ({"distributional": "c51", "num_atoms": 1}, "algo.num_atoms must be >= 2"),
    ({"priority_exponent": 1.5}, "algo.priority_exponent must be in [0, 1]"),
    ({"noisy": True}, "algo.noisy=true explores through the noisy layers"),
    ({"num_atoms": 51}, "algo.num_atoms=51 needs a value distribution"),
    ({"replay": "rank"}, "choose one of: uniform, prioritized"),
    ({"distributional": "iqn"}, "choose one of: none, c51, qr"),
    ({"augmentation": "crop"}, "choose one of: none, random_shift"),
])
def test_bad_settings_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        DQNConfig(**overrides)


@pytest.mark.parametrize("augmentation", ["none", "random_shift"])
def test_parts_compose_on_frames(augmentation):
    cfg = DQNConfig(learning_starts_steps=0, batch_size=4, train_interval_steps=1, buffer_capacity_transitions=64,
                    n_step=3, replay="prioritized", dueling=True, noisy=True, epsilon_start=0.0, epsilon_end=0.0,
                    distributional="c51", double_dqn=True, augmentation=augmentation)
    algo = DQN(cfg, FRAMES, ACTIONS, NetworkConfig(), torch.device("cpu"), seed=1, num_envs=1, total_steps=100)
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 255, (1, 4, 84, 84), dtype=np.uint8)
    out = []
    for t in range(12):
        next_obs = np.concatenate([obs[:, 1:], rng.integers(0, 255, (1, 1, 84, 84), dtype=np.uint8)], axis=1)
        out.append(algo.observe(obs, algo.act(obs, t), np.ones(1, np.float32), next_obs, np.zeros(1, np.float32),
                                np.zeros(1, bool), t))
        obs = next_obs
    assert all(np.isfinite(m["loss/td"]) for m in out if m)


def test_augmentation_needs_frames():
    with pytest.raises(ConfigError, match="algo.augmentation=random_shift shifts image frames"):
        make(augmentation="random_shift")


def test_all_combinations_of_the_switches_build():
    for dueling, noisy, dist in itertools.product([False, True], [False, True], ["none", "c51", "qr"]):
        eps = {"epsilon_start": 0.0, "epsilon_end": 0.0} if noisy else {}
        algo = make(dueling=dueling, noisy=noisy, distributional=dist, **eps)
        assert algo.predict(np.zeros((3, 4), np.float32)).shape == (3,)
