"""run(cfg, run_dir): the loop, the run directory, truncation handling."""

import dataclasses
import json
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlexp import config
from rlexp.algos.dqn import DQN
from rlexp.build import resolve_device
from rlexp.checkpoint import load_checkpoint
from rlexp.config import ConfigError, DeviceConfig
from rlexp.loggers.jsonl import read_metrics
from rlexp.train import RunInfo, run
from tests.conftest import TINY, compose_train


def test_run_writes_the_run_directory(tmp_path):
    cfg = compose_train([*TINY, "eval_interval_steps=500", "checkpoint_interval_steps=1000",
                         "logger.log_interval_steps=500"])
    summary = run(cfg, tmp_path / "run", RunInfo(command="rlexp train x=1", overrides=("x=1",)))
    run_dir = tmp_path / "run"
    assert (run_dir / "command.txt").read_text() == "rlexp train x=1\n"
    assert "id: CartPole-v1" in (run_dir / "config.yaml").read_text()
    assert (run_dir / "overrides.yaml").read_text().strip() == "- x=1"
    rows = read_metrics(run_dir / "metrics.jsonl")
    train_rows = [r for r in rows if "perf/sps" in r]
    eval_rows = [r for r in rows if "eval/episode_return" in r]
    assert [r["step"] for r in train_rows] == [500, 1000, 1500]
    assert [r["step"] for r in eval_rows] == [500, 1000, 1500]
    assert all(r["eval/episodes"] == 2 for r in eval_rows)
    for key in ("train/epsilon", "train/episode_return", "train/episode_length", "loss/td", "train/updates"):
        assert key in train_rows[-1], key
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "best.pt", "latest.pt", "manifest.json", "step_0000001000.pt", "step_0000001500.buffers.pt",
        "step_0000001500.pt"]
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert max(r["eval/episode_return"] for r in eval_rows) == summary["best_eval_return"]
    assert best["step"] == summary["best_eval_step"]
    ckpt = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    assert ckpt["step"] == 1500 and set(ckpt["trainer"]["algo"]) >= {"q", "q_target", "optimizer"}
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == summary["steps"] == 1500


def test_refuses_a_directory_that_holds_a_run(tmp_path, tiny_cfg):
    run(tiny_cfg, tmp_path)
    before = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(ConfigError, match="already holds a run"):
        run(tiny_cfg, tmp_path)
    assert (tmp_path / "metrics.jsonl").read_text() == before


def test_bad_config_writes_nothing(tmp_path):
    cfg = compose_train([*TINY, "env.id=NoSuchEnv-v0"])
    with pytest.raises(ConfigError):
        run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_same_seed_same_run(tmp_path):
    cfg = compose_train([*TINY, "logger.log_interval_steps=500"])
    run(cfg, tmp_path / "a")
    run(cfg, tmp_path / "b")
    strip = lambda rows: [{k: v for k, v in r.items() if not k.startswith("perf/")} for r in rows]  # noqa: E731
    a, b = (strip(read_metrics(tmp_path / d / "metrics.jsonl")) for d in "ab")
    assert a == b and len(a) > 3


def test_parallel_envs_count_agent_steps(tmp_path):
    cfg = compose_train([*TINY, "env.num_envs=4", "total_steps=1000"])
    summary = run(cfg, tmp_path / "run")
    assert summary["steps"] == 1000


def test_resolve_device():
    assert resolve_device(DeviceConfig(type="cpu")) == torch.device("cpu")
    assert resolve_device(DeviceConfig(type="auto")).type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device=cuda is not available"):
            resolve_device(DeviceConfig(type="cuda"))


# ------------------------------------------------------------------ truncation is not termination


class CountingEnv(gym.Env):
    """obs = [t]; never terminates by itself, so every episode end is a time-limit truncation."""

    observation_space = gym.spaces.Box(0, 100, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], np.float32), 1.0, False, False, {}


class Recorder(DQN):
    transitions: list = []
    instance = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        Recorder.instance = self

    def observe(self, obs, actions, rewards, next_obs, terminated, truncated, step, episode_end=None):
        Recorder.transitions.append((obs.copy(), next_obs.copy(), terminated.copy(), truncated.copy()))
        return super().observe(obs, actions, rewards, next_obs, terminated, truncated, step, episode_end)


def test_truncation_bootstraps_from_the_real_final_observation(tmp_path, monkeypatch):
    gym.register("rlexp-test/Counting-v0", entry_point=CountingEnv, max_episode_steps=3)
    monkeypatch.setitem(sys.modules, "rlexp_test_recorder", sys.modules[__name__])  # this module, as pytest loaded it
    monkeypatch.setitem(config.ALGOS, "dqn", dataclasses.replace(config.ALGOS["dqn"], target="rlexp_test_recorder:Recorder"))
    Recorder.transitions = []
    cfg = compose_train([*TINY, "env.id=rlexp-test/Counting-v0", "total_steps=7"])
    run(cfg, tmp_path / "run")
    obs = [float(t[0][0, 0]) for t in Recorder.transitions]
    next_obs = [float(t[1][0, 0]) for t in Recorder.transitions]
    terminated = [bool(t[2][0]) for t in Recorder.transitions]
    truncated = [bool(t[3][0]) for t in Recorder.transitions]
    assert obs == [0, 1, 2, 0, 1, 2, 0]
    assert next_obs == [1, 2, 3, 1, 2, 3, 1]  # 3 is the real final obs, not the reset obs 0
    assert truncated == [False, False, True, False, False, True, False]
    assert not any(terminated)  # so the TD target bootstraps from Q(3, .)
    buffer = Recorder.instance.buffer
    assert buffer.next_obs[:7, 0].tolist() == next_obs and buffer.terminated[:7].tolist() == [0.0] * 7


def test_periodic_eval_videos(tmp_path):
    cfg = compose_train([*TINY, "eval_interval_steps=500", "logger.video_interval_evals=2", "logger=wandb",
                         "logger.progress=none", "logger.video_interval_evals=2"])
    run(cfg, tmp_path / "run")
    videos = sorted(p.name for p in (tmp_path / "run" / "videos").iterdir())
    assert videos == ["train_step1500.mp4", "train_step500.mp4"]  # evals 1 and 3 of 3
    rows = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "eval/video_episode_return" in r]
    assert [r["step"] for r in rows] == [500, 1500]


def test_the_run_lifecycle_and_the_gym_trainer_name_no_algorithm():
    # an algorithm is a file, a schema, a yaml and one registry line: the loop only talks to the Algorithm API
    import ast
    import inspect

    from rlexp import build, lifecycle, train
    from rlexp.config import ALGOS
    from rlexp.trainers import gym as gym_trainer

    names = set(ALGOS) | {entry.target.rpartition(":")[2] for entry in ALGOS.values() if entry.target}
    for module in (train, lifecycle, build, gym_trainer):
        tree = ast.parse(inspect.getsource(module))
        code_names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        code_names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not names & code_names and not any(name in strings for name in names), module.__name__


def test_continuous_actions_train_end_to_end(tmp_path):
    cfg = compose_train(["algo=ppo", "env=pendulum", "total_steps=256", "env.num_envs=2", "algo.rollout_steps=32",
                         "algo.num_minibatches=2", "algo.update_epochs=1", "eval_interval_steps=0", "eval_episodes=2",
                         "checkpoint_interval_steps=0", "logger=none", "logger.progress=none"])
    summary = run(cfg, tmp_path / "run")
    assert summary["steps"] == 256 and -2000 < summary["eval_return_mean"] < 0


def test_run_puts_back_the_process_settings_it_changed(tmp_path):
    """A Python caller's process is left as it was: torch threads and flush-denormal."""
    from rlexp.build import _flush_denormal_on

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(False)
    try:
        run(compose_train([*TINY, "total_steps=200", "device.torch_threads=2", "device.flush_denormal=true"]),
            tmp_path / "run")
        assert torch.get_num_threads() == 1 and not _flush_denormal_on()
    finally:
        torch.set_num_threads(threads)


def test_an_algorithm_refuses_a_device_setting_it_would_ignore(tmp_path):
    for overrides, message in ((["algo=q_learning", "env=maze", "device.amp=true"], "device.amp=true"),
                               (["algo=sarsa", "env=maze", "device.compile=true"], "device.compile=true"),
                               (["algo=ppo", "device.replay=host"], "device.replay=host")):
        with pytest.raises(ConfigError, match=f"^{message} .* does not apply to algo="):
            run(compose_train([*TINY[:4], *TINY[-2:], *overrides]), tmp_path / "run")
        assert not (tmp_path / "run").exists()


def test_a_cpu_setting_that_slows_the_run_says_so(tmp_path, capsys):
    """device.amp / device.compile on a CPU with an MLP: a note at the start with the measured effect."""
    run(compose_train([*TINY, "total_steps=200", "device=cpu", "device.amp=true"]), tmp_path / "amp")
    out = capsys.readouterr().out
    assert "note: device.amp on a CPU slows the MLP networks down" in out and "device.compile" not in out
    run(compose_train([*TINY, "total_steps=200", "device=cpu"]), tmp_path / "plain")
    assert "note: device." not in capsys.readouterr().out
    run(compose_train([*TINY, "total_steps=200", "device=cpu", "device.replay=device"]), tmp_path / "replay")
    assert "note: device.replay=device changes nothing on a CPU run" in capsys.readouterr().out


def test_the_summary_splits_the_run_time_by_phase(tmp_path):
    summary = run(compose_train([*TINY, "total_steps=600"]), tmp_path / "run")
    split = summary["time_split_s"]
    assert set(split) == {"acting", "env", "replay", "update", "other"}
    assert all(seconds >= 0 for seconds in split.values()) and split["update"] > 0
    assert sum(split.values()) <= summary["wall_s"]
