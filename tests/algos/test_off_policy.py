"""SAC, TD3 and DDPG: their pieces against references, learning on Pendulum, and MuJoCo."""

import math
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlexp.build import build_algorithm
from rlexp.config import ConfigError
from rlexp.envs import make_vector_env
from rlexp.networks.continuous import CriticEnsemble, SquashedGaussianActor
from tests.conftest import compose_train


def test_critic_ensemble_equals_separate_networks():
    """Each member of the batched ensemble computes what its own MLP with the same weights would."""
    torch.manual_seed(0)
    ens = CriticEnsemble(2, obs_dim=5, action_dim=3, hidden_sizes=[16, 8])
    obs, act = torch.randn(7, 5), torch.randn(7, 3)
    q = ens(obs, act)
    assert q.shape == (2, 7)
    for m in range(2):
        x = torch.cat([obs, act], 1)
        for i, (w, b) in enumerate(zip(ens.weights, ens.biases)):
            x = x @ w[m] + b[m, 0]
            x = torch.relu(x) if i < len(ens.weights) - 1 else x
        torch.testing.assert_close(q[m], x.squeeze(-1))
    frozen = ens(obs, act.requires_grad_(), frozen=True).sum()
    frozen.backward()
    assert all(p.grad is None for p in ens.parameters()) and act.grad is not None  # only the action takes a gradient


def test_squashed_gaussian_log_prob_is_the_change_of_variables():
    """log pi(a) of the tanh-squashed draw equals torch's TransformedDistribution(Normal, Tanh)."""
    torch.manual_seed(1)
    actor = SquashedGaussianActor(4, 2, [16])
    obs = torch.randn(64, 4)
    gen = torch.Generator().manual_seed(3)
    action, log_prob = actor.sample(obs, gen)
    mean, log_std = actor._mean_log_std(obs)
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()), [torch.distributions.TanhTransform(cache_size=1)])
    gen = torch.Generator().manual_seed(3)
    u = mean + log_std.exp() * torch.randn(mean.shape, generator=gen)
    torch.testing.assert_close(action, torch.tanh(u))
    torch.testing.assert_close(log_prob, dist.log_prob(torch.tanh(u)).sum(-1), rtol=1e-4, atol=1e-4)
    assert action.abs().max() <= 1


@pytest.mark.parametrize("name", ["sac", "td3", "ddpg"])
def test_actions_fill_the_env_bounds_and_map_back(name):
    cfg = compose_train([f"algo={name}", "env=pendulum", "device=cpu", "logger=none"])
    envs = make_vector_env(cfg.env)
    algo = build_algorithm(cfg, envs, torch.device("cpu"))
    edges = algo.to_env(np.array([[-1.0], [0.0], [1.0]]))
    assert edges.ravel().tolist() == [-2.0, 0.0, 2.0] and edges.dtype == np.float32
    random = algo.act(np.zeros((1, 3)), step=0)  # before learning starts: uniform over the bounds
    assert envs.single_action_space.contains(random[0])
    assert np.allclose(algo.from_env(algo.to_env(np.array([[0.3]]))), 0.3)
    assert (algo.cfg.n_critics, algo.critic.members) == ((1, 1) if name == "ddpg" else (2, 2))
    envs.close()


def test_truncation_bootstraps_and_termination_does_not():
    from rlexp.algos.off_policy import ContinuousOffPolicy

    cfg = compose_train(["algo=td3", "env=pendulum", "device=cpu", "logger=none"])
    algo = build_algorithm(cfg, make_vector_env(cfg.env), torch.device("cpu"))
    targets = ContinuousOffPolicy.targets(algo, torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0]),
                                          torch.tensor([10.0, 10.0]))
    assert targets.tolist() == pytest.approx([1.0 + 0.99 * 10.0, 1.0])


@pytest.mark.parametrize("name", ["sac", "td3", "ddpg"])
def test_hand_written_updates_match_autograd(name):
    """The fast path (device.fast_path=auto) and autograd (off) take the same steps: the same
    seed, the same minibatches, 12 updates each (actor and targets included), then the same
    weights, metrics and random state. They agree to float32 rounding, not bit for bit: the
    fast path runs one policy pass over the next observations and the observations together."""
    learners = []
    for fast_path in ("auto", "off"):
        cfg = compose_train([f"algo={name}", "env=pendulum", "device=cpu", "logger=none", "seed=3",
                             f"device.fast_path={fast_path}", "network.hidden_sizes=[32,32]", "algo.batch_size=16"])
        envs = make_vector_env(cfg.env)
        torch.manual_seed(3)  # the networks' initial weights (the trainer seeds torch so)
        algo = build_algorithm(cfg, envs, torch.device("cpu"))
        assert algo.manual_grad == (fast_path == "auto") and algo.update_path == (
            "hand-written" if fast_path == "auto" else "autograd")
        obs, _ = envs.reset(seed=3)
        for step in range(200):  # the same random transitions in both replays
            actions = algo.act(obs, step)
            next_obs, rewards, terminated, truncated, _ = envs.step(actions)
            algo.observe(obs, actions, rewards, next_obs, terminated, truncated, step=0)  # step 0: no training yet
            obs = next_obs
        envs.close()
        metrics = [algo.train(3) for _ in range(4)]
        learners.append((algo, metrics))
    (fast, fast_metrics), (reference, reference_metrics) = learners
    for got, expected in zip(fast_metrics, reference_metrics):
        assert got.keys() == expected.keys() and {"loss/critic", "loss/actor"} <= got.keys()
        assert got == pytest.approx(expected, rel=1e-4, abs=1e-5)
    networks = ["critic", "critic_target", "actor"] + (["actor_target"] if name != "sac" else ["log_alpha"])
    for attr in networks:
        for a, b in zip(getattr(fast, attr).state_dict().values() if attr != "log_alpha" else [fast.log_alpha],
                        getattr(reference, attr).state_dict().values() if attr != "log_alpha" else [reference.log_alpha]):
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-4, atol=1e-5)
    assert fast.noise.get_state().equal(reference.noise.get_state())  # the same draws, in the same order
    assert fast.updates == reference.updates == 12 and fast.actor_updates == reference.actor_updates > 0


@pytest.mark.slow
@pytest.mark.parametrize(("name", "threshold"), [("sac", -250), ("td3", -250)])
def test_learns_to_balance_pendulum(tmp_path, name, threshold):
    from rlexp.train import run

    # RL Zoo's Pendulum values (conf/tuned/<algo>_pendulum.yaml), a shorter budget and smaller networks
    cfg = compose_train([f"algo={name}", "env=pendulum", "seed=1", "total_steps=8000", "eval_interval_steps=4000",
                         "network.hidden_sizes=[64,64]", "logger=none", "logger.progress=none"])
    summary = run(cfg, tmp_path / "run")
    assert summary["eval_return_mean"] >= threshold, summary


@pytest.mark.slow
def test_sac_trains_on_mujoco_hopper_and_records_a_video(tmp_path):
    """A short SAC run on Hopper-v5 (gymnasium's MuJoCo v5), with an mp4 rendered off-screen."""
    from rlexp.train import run

    cfg = compose_train(["algo=sac", "env=hopper", "seed=1", "total_steps=1500", "eval_interval_steps=1500",
                         "eval_episodes=2", "algo.learning_starts_steps=500", "algo.batch_size=64",
                         "network.hidden_sizes=[64,64]", "logger=none", "logger.progress=none",
                         "logger.video_interval_evals=1", "checkpoint_interval_steps=0"])
    summary = run(cfg, tmp_path / "run")
    assert summary["steps"] == 1500 and math.isfinite(summary["eval_return_mean"])
    (video,) = (tmp_path / "run" / "videos").glob("*.mp4")
    assert video.stat().st_size > 5_000


def test_a_mujoco_env_without_mujoco_names_the_extra(monkeypatch):
    from rlexp.envs import make as make_module

    monkeypatch.setattr(make_module.importlib.util, "find_spec", lambda name: None if name == "mujoco" else True)
    cfg = compose_train(["algo=sac", "env=hopper", "logger=none"])
    with pytest.raises(ConfigError, match=r"env.id=Hopper-v5 is a MuJoCo task and the mujoco package is not "
                                          r"installed: pip install 'rlexp\[mujoco\]'"):
        make_module.check_config(cfg.env)


def test_no_off_screen_renderer_is_one_line_naming_the_packages():
    """Without a screen, EGL or OSMesa, MuJoCo videos are refused in one line (checked in a fresh
    process where no library can be found)."""
    code = ("import ctypes.util, os; ctypes.util.find_library = lambda name: None; os.environ.pop('MUJOCO_GL', None); "
            "os.environ.pop('DISPLAY', None)\n"
            "from rlexp.envs.make import mujoco_headless_rendering\n"
            "try:\n    mujoco_headless_rendering()\nexcept Exception as err:\n    print(err)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ}).stdout
    assert "through EGL or OSMesa, and this machine has neither: install one (Debian/Ubuntu: apt install libegl1" in out


def test_any_box_action_gymnasium_env_by_id():
    cfg = compose_train(["algo=sac", "env=gym", "env.id=MountainCarContinuous-v0", "device=cpu", "logger=none"])
    algo = build_algorithm(cfg, make_vector_env(cfg.env), torch.device("cpu"))
    assert isinstance(algo.action_space, gym.spaces.Box) and algo.action_dim == 1
