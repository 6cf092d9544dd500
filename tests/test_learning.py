"""Learning tests: each algorithm reaches its quality bar with its preset and a fixed seed."""

import pytest

from rlexp.loggers.jsonl import read_metrics
from rlexp.train import run
from tests.conftest import compose_train


@pytest.mark.slow
def test_dqn_solves_cartpole(tmp_path):
    cfg = compose_train(["seed=1", "logger=none", "logger.progress=none"])  # the demo's config
    summary = run(cfg, tmp_path / "run")
    # solved: mean greedy return >= 475 over 10 eval episodes, within 50k agent steps
    assert cfg.total_steps == 50_000 and cfg.eval_episodes == 10
    assert summary["eval_return_mean"] >= 475, summary
    final = read_metrics(tmp_path / "run" / "metrics.jsonl")[-1]
    assert final["step"] == 50_000 and final["eval/episode_return"] >= 475
    assert summary["best_eval_return"] >= 475 and (tmp_path / "run" / "checkpoints" / "best.pt").exists()


@pytest.mark.slow
def test_ppo_solves_cartpole_within_100k_steps(tmp_path):
    cfg = compose_train(["algo=ppo", "seed=1", "logger=none", "logger.progress=none"])  # RL Zoo's tuned values
    assert cfg.total_steps == 100_000 and cfg.env.num_envs == 8
    summary = run(cfg, tmp_path / "run")
    assert summary["eval_return_mean"] >= 475, summary


@pytest.mark.slow
def test_a2c_solves_cartpole(tmp_path):
    cfg = compose_train(["algo=a2c", "seed=1", "logger=none", "logger.progress=none"])  # conf/tuned/a2c_cartpole
    assert cfg.total_steps == 200_000 and cfg.env.num_envs == 8
    summary = run(cfg, tmp_path / "run")
    assert summary["eval_return_mean"] >= 475, summary


@pytest.mark.slow
def test_reinforce_solves_cartpole(tmp_path):
    cfg = compose_train(["algo=reinforce", "seed=1", "logger=none", "logger.progress=none"])  # conf/tuned
    assert cfg.total_steps == 150_000
    summary = run(cfg, tmp_path / "run")
    assert summary["eval_return_mean"] >= 475, summary


@pytest.mark.slow
def test_ppo_balances_pendulum_within_200k_steps(tmp_path):
    # continuous actions: the Gaussian head; conf/tuned/ppo_pendulum (RL Zoo's values without gSDE)
    cfg = compose_train(["experiment=ppo_pendulum", "seed=1", "logger=none", "logger.progress=none"])
    assert cfg.total_steps == 200_000 and cfg.env.id == "Pendulum-v1"
    summary = run(cfg, tmp_path / "run")
    assert summary["eval_return_mean"] >= -250, summary
