"""rlexp PPO vs Stable-Baselines3 PPO with identical hyperparameters, one invocation.

CartPole-v1: RL Zoo's tuned PPO settings (8 envs, 32-step rollouts, 20 epochs, ...), which
are rlexp's `algo=ppo env=cartpole` defaults. Pong (`--pong`): the PPO paper's Atari
setting, shortened. Each library runs in its own subprocess, one after the other.

    python scripts/bench_ppo.py                     # CartPole, 100k agent steps
    python scripts/bench_ppo.py --pong --steps 8192 # Pong, 8 envs, short
    python scripts/bench_ppo.py --device cuda       # on a GPU machine

Target (issue 4): rlexp >= 1.5x SB3's agent steps/s at equal learning curves, on CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CARTPOLE = dict(n_envs=8, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
                learning_rate=1e-3, clip_range=0.2, net_arch=[64, 64])
PONG = dict(n_envs=8, n_steps=128, batch_size=256, gae_lambda=0.95, gamma=0.99, n_epochs=4, ent_coef=0.01,
            learning_rate=2.5e-4, clip_range=0.1, vf_coef=0.5)


def run_rlexp(pong: bool, steps: int, device: str) -> dict:
    from hydra import compose, initialize_config_module

    from rlexp.config import to_typed
    from rlexp.train import run

    common = [f"total_steps={steps}", "eval_interval_steps=0", "eval_episodes=10", "checkpoint_interval_steps=0",
              "logger=none", "logger.progress=none", f"device={device}", "seed=1"]
    if pong:
        s = PONG
        overrides = ["experiment=ppo_pong_schulman2017", f"algo.rollout_steps={s['n_steps']}",
                     f"algo.num_minibatches={s['n_envs'] * s['n_steps'] // s['batch_size']}",
                     "eval_episodes=1", "env.max_episode_frames=4000"]
    else:
        overrides = ["algo=ppo", "env=cartpole"]  # conf/tuned/ppo_cartpole.yaml: the same numbers as CARTPOLE
    with initialize_config_module("rlexp.conf", version_base="1.3"):
        cfg = to_typed(compose("train", overrides=[*overrides, *common]))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = run(cfg, Path(tmp) / "run")
        wall = time.perf_counter() - start
    train_wall = wall - (summary["wall_s"] - summary["train_wall_s"])  # SB3's learn() has no evaluation
    return {"wall_s": train_wall, "eval_return": summary["eval_return_mean"]}


def run_sb3(pong: bool, steps: int, device: str) -> dict:
    import numpy as np
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    if pong:
        import ale_py
        import gymnasium as gym
        from stable_baselines3.common.env_util import make_atari_env
        from stable_baselines3.common.vec_env import VecFrameStack

        gym.register_envs(ale_py)
        s = PONG
        env = VecFrameStack(make_atari_env("ALE/Pong-v5", n_envs=s["n_envs"], seed=1,
                                           env_kwargs={"frameskip": 1, "repeat_action_probability": 0.0}), 4)
        kwargs = dict(policy="CnnPolicy", vf_coef=s["vf_coef"])
    else:
        s = CARTPOLE
        env = make_vec_env("CartPole-v1", n_envs=s["n_envs"], seed=1)
        kwargs = dict(policy="MlpPolicy", policy_kwargs={"net_arch": s["net_arch"]})
    lr, clip = s["learning_rate"], s["clip_range"]
    start = time.perf_counter()
    model = PPO(env=env, n_steps=s["n_steps"], batch_size=s["batch_size"], gae_lambda=s["gae_lambda"],
                gamma=s["gamma"], n_epochs=s["n_epochs"], ent_coef=s["ent_coef"],
                learning_rate=lambda f: lr * f, clip_range=lambda f: clip * f,  # RL Zoo's lin_ schedules
                device=device, seed=1, verbose=0, **kwargs)
    model.learn(steps)
    wall = time.perf_counter() - start
    episodes = 1 if pong else 10
    returns, _ = evaluate_policy(model, model.get_env(), n_eval_episodes=episodes, deterministic=True)
    return {"wall_s": wall, "eval_return": float(np.mean(returns))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pong", action="store_true", help="Pong instead of CartPole")
    parser.add_argument("--steps", type=int, default=None, help="agent steps (default 100k CartPole, 8192 Pong)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", choices=["rlexp", "sb3"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    steps = args.steps or (8192 if args.pong else 100_000)
    if args.child:
        result = {"rlexp": run_rlexp, "sb3": run_sb3}[args.child](args.pong, steps, args.device)
        result["sps"] = steps / result["wall_s"]
        print("RESULT " + json.dumps(result), flush=True)
        return

    import torch

    env = "Pong (8 envs, PPO paper Atari setting)" if args.pong else "CartPole-v1 (RL Zoo's tuned PPO)"
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"device {args.device}; {env}, {steps} agent steps each")
    results = {}
    for name in ("rlexp", "sb3"):
        cmd = [sys.executable, __file__, "--child", name, "--steps", str(steps), "--device", args.device]
        out = subprocess.run(cmd + (["--pong"] if args.pong else []), capture_output=True, text=True, check=False)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            sys.exit(f"{name} failed:\n{out.stderr[-3000:]}")
        results[name] = r = json.loads(lines[-1][len("RESULT "):])
        print(f"  {name:<5}: {r['sps']:8.1f} agent steps/s (training, no evaluation), final eval return "
              f"{r['eval_return']:.1f}", flush=True)
    print(f"ratio rlexp/sb3 steps/s: {results['rlexp']['sps'] / results['sb3']['sps']:.2f}x (target >= 1.5x on CPU)")


if __name__ == "__main__":
    main()
