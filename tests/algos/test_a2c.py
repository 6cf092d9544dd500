import gymnasium as gym
import numpy as np
import pytest
import torch

from rlexp.algos.a2c import A2C
from rlexp.algos.flat_adam import FlatAdam
from rlexp.config import A2CConfig, NetworkConfig

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACTIONS = gym.spaces.Discrete(2)


def make_a2c(**kw) -> A2C:
    return A2C(A2CConfig(**{"rollout_steps": 5, **kw}), OBS, ACTIONS, NetworkConfig(hidden_sizes=[8]),
               torch.device("cpu"), 0, 2, total_steps=100)


def _run(algo, steps):
    out = []
    for k in range(steps):
        obs = np.random.default_rng(k).normal(size=(2, 3)).astype(np.float32)
        actions = algo.act(obs, 2 * k)
        out.append(algo.observe(obs, actions, np.ones(2, np.float32), obs, np.zeros(2, bool), np.zeros(2, bool), 2 * k))
    return out


def test_one_gradient_step_per_rollout():
    algo = make_a2c()
    metrics = _run(algo, 10)
    assert [bool(m) for m in metrics] == ([False] * 4 + [True]) * 2
    assert algo.updates == 2
    assert {"loss/policy", "loss/value", "loss/entropy", "train/explained_variance"} <= set(metrics[4])


@pytest.mark.parametrize(("optimizer", "cls"), [("rmsprop", torch.optim.RMSprop), ("adam", FlatAdam)])
def test_optimizer_choice(optimizer, cls):
    assert isinstance(make_a2c(optimizer=optimizer).optimizer, cls)


def test_n_step_returns_are_gae_with_lambda_one():
    """With gae_lambda=1 the returns are the discounted n-step returns bootstrapped at the end."""
    from rlexp.algos.onpolicy import compute_gae

    r = torch.ones(3, 1)
    v = torch.zeros(3, 1)
    _, ret = compute_gae(r, v, torch.zeros(3, 1), torch.tensor([10.0]), gamma=0.5, lam=1.0)
    assert ret[0, 0].item() == pytest.approx(1 + 0.5 + 0.25 + 0.125 * 10)


def test_state_round_trip():
    a = make_a2c()
    _run(a, 5)
    b = make_a2c()
    b.load_state_dict(a.state_dict())
    obs = np.random.default_rng(3).normal(size=(4, 3)).astype(np.float32)
    assert np.array_equal(a.predict(obs), b.predict(obs)) and b.updates == 1


def test_continuous_actions():
    algo = A2C(A2CConfig(rollout_steps=2), OBS, gym.spaces.Box(-1, 1, (2,), np.float32), NetworkConfig(hidden_sizes=[8]),
               torch.device("cpu"), 0, 2, total_steps=100)
    out = _run(algo, 4)
    assert algo.updates == 2 and np.isfinite(out[-1]["loss/policy"])
    assert algo.act(np.zeros((2, 3), np.float32), 8).shape == (2, 2)
