"""The CUDA path, end to end on a GPU (skipped without one; scripts/gpu_check.sh runs this file):
each family trains a few updates on device=cuda, with the GPU settings it takes (bfloat16
autocast, torch.compile, the replay on the GPU), checkpoints, resumes and evaluates."""

from __future__ import annotations

import json

import pytest
import torch

from rlexp.train import resume, run
from tests.conftest import cli, compose_train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

QUIET = ["logger=none", "logger.progress=none", "device=cuda"]
GYM = ["total_steps=1024", "eval_interval_steps=512", "eval_episodes=2", "checkpoint_interval_steps=512", *QUIET]


@pytest.mark.parametrize("args", [
    ["algo=dqn", "env=cartpole", "algo.learning_starts_steps=256", "algo.train_interval_steps=64",
     "device.replay=device"],
    ["algo=dqn", "env=cartpole", "algo.learning_starts_steps=256", "device.amp=true", "device.compile=true"],
    ["algo=ppo", "env=cartpole", "algo.rollout_steps=64", "device.amp=true"],
    ["algo=a2c", "env=cartpole"],
    ["algo=dqn", "env=pong", "env.max_episode_frames=400", "algo.learning_starts_steps=256",
     "algo.buffer_capacity_transitions=2000", "total_steps=512", "eval_interval_steps=0", "eval_episodes=1"],
], ids=["dqn_replay_on_gpu", "dqn_amp_compile", "ppo_amp", "a2c", "dqn_pong"])
def test_gym_families_train_checkpoint_and_resume_on_cuda(args, tmp_path):
    cfg = compose_train([*GYM, *args])
    summary = run(cfg, tmp_path / "run")
    assert summary["steps"] == cfg.total_steps and summary["objective"] == summary["objective"]  # finite
    again = resume(tmp_path / "run", budget=cfg.total_steps + 256)
    assert again["steps"] == cfg.total_steps + 256
    code, out, err = cli(["eval", str(tmp_path / "run"), "--episodes", "2", "--device", "cuda"])
    assert code == 0, err


def test_alphazero_self_play_on_cuda(tmp_path):
    summary = run(compose_train(["algo=alphazero", "env=tictactoe", "algo.total_games=16", "algo.concurrent_games=8",
                                 "algo.simulations=8", "algo.eval_interval_games=0", "algo.eval_games=4",
                                 "algo.train_interval_games=8", "algo.batch_size=16", "algo.learning_starts_positions=16",
                                 "device.amp=true", *QUIET]), tmp_path / "run")
    assert summary["games"] == 16


def test_the_rlhf_stages_on_cuda(tmp_path):
    common = ["env=arithmetic", *QUIET]
    run(compose_train(["algo=pretrain", "algo.total_examples=2048", "algo.eval_prompts=32", *common]), tmp_path / "pre")
    run(compose_train(["algo=sft", "algo.total_examples=1024", "algo.eval_prompts=32",
                       f"model.from_run={tmp_path / 'pre'}", *common]), tmp_path / "sft")
    run(compose_train(["algo=reward_model", "algo.total_pairs=1024", "algo.eval_pairs=64",
                       f"model.from_run={tmp_path / 'sft'}", *common]), tmp_path / "rm")
    for algo in ("rlhf_ppo", "grpo"):
        summary = run(compose_train([f"algo={algo}", "algo.total_prompts=64", "algo.batch_prompts=16",
                                     "algo.minibatch_answers=16", "algo.log_interval_prompts=16", "algo.eval_prompts=32",
                                     f"model.from_run={tmp_path / 'sft'}", f"reward.from_run={tmp_path / 'rm'}",
                                     *common]), tmp_path / algo)
        assert summary["prompts"] == 64
        first = next(json.loads(x) for x in (tmp_path / algo / "metrics.jsonl").read_text().splitlines()
                     if "rlhf/kl" in x)
        assert first["rlhf/kl"] == 0.0
