import gymnasium as gym
import numpy as np
import pytest
import torch

from rlexp.algos.reinforce import Reinforce, discounted_returns
from rlexp.config import NetworkConfig, ReinforceConfig

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACTIONS = gym.spaces.Discrete(2)


def make(num_envs=1, **kw) -> Reinforce:
    return Reinforce(ReinforceConfig(**kw), OBS, ACTIONS, NetworkConfig(hidden_sizes=[8]), torch.device("cpu"), 0,
                     num_envs)


def test_discounted_returns():
    assert discounted_returns(np.array([1.0, 1.0, 1.0]), 0.5).tolist() == pytest.approx([1.75, 1.5, 1.0])
    assert discounted_returns(np.array([1.0]), 0.5, bootstrap=4.0).tolist() == pytest.approx([3.0])


def _episode(algo, lengths, truncate_last=False):
    """Step ``len(lengths)`` envs; env i ends after lengths[i] steps."""
    n = len(lengths)
    metrics = []
    for t in range(max(lengths)):
        obs = np.full((n, 3), t, np.float32) / 10
        actions = algo.act(obs, t)
        end = np.array([t == length - 1 for length in lengths])
        term = end & (not truncate_last)
        trunc = end & truncate_last
        metrics.append(algo.observe(obs, actions, np.ones(n, np.float32), obs, term, trunc, t * n))
    return metrics


def test_updates_after_the_requested_number_of_finished_episodes():
    algo = make(episodes_per_update=2)
    assert not any(_episode(algo, [5]))  # one episode: no update yet
    out = _episode(algo, [3])
    assert out[-1] and algo.updates == 1  # the second episode triggers the step
    algo2 = make(num_envs=2, episodes_per_update=2)
    out = _episode(algo2, [4, 6])
    assert [bool(m) for m in out] == [False] * 5 + [True]  # both episodes done at t=5


@pytest.mark.parametrize("baseline", ["none", "mean", "value"])
def test_baselines(baseline):
    algo = make(baseline=baseline)
    metrics = [m for m in _episode(algo, [6]) if m]
    assert len(metrics) == 1 and np.isfinite(metrics[0]["loss/policy"])
    assert ("loss/value" in metrics[0]) == (baseline == "value")


def test_truncation_bootstraps_with_the_learned_value():
    algo = make(baseline="value", episodes_per_update=10)
    _episode(algo, [2], truncate_last=True)
    (_, _, returns), = algo._finished
    with torch.no_grad():
        v = float(algo.net.value(torch.full((1, 3), 0.1)))
    assert returns.tolist() == pytest.approx([1 + 0.99 * (1 + 0.99 * v), 1 + 0.99 * v], rel=1e-5)


def test_state_round_trip():
    a = make()
    _episode(a, [4])
    b = make()
    b.load_state_dict(a.state_dict())
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    assert np.array_equal(a.predict(obs), b.predict(obs)) and b.updates == 1


def test_continuous_actions_learn_from_the_unclipped_draw():
    algo = Reinforce(ReinforceConfig(), OBS, gym.spaces.Box(-0.1, 0.1, (1,), np.float32),
                     NetworkConfig(hidden_sizes=[8], log_std_init=1.0), torch.device("cpu"), 0, 1)
    out = _episode(algo, [4])
    assert algo.updates == 1 and np.isfinite(out[-1]["loss/policy"])
    assert np.abs(algo.act(np.zeros((1, 3), np.float32), 9)).max() <= 0.1
