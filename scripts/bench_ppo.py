"""rlexp PPO vs Stable-Baselines3 PPO with identical hyperparameters, one invocation.

Runs, one after the other, each library in its own subprocess (so neither inherits the
other's threads or allocator state):

- CartPole-v1, 8 envs: RL Zoo's tuned PPO (conf/tuned/ppo_cartpole.yaml), 100k agent steps.
- Pong, 8 envs, short: the PPO paper's Atari setting (experiment=ppo_pong_schulman2017),
  8192 agent steps by default; far too short to learn Pong, it measures speed.
- Pendulum-v1, 4 envs, continuous actions: RL Zoo's tuned PPO without gSDE
  (experiment=ppo_pendulum), 200k agent steps; the quality bar is a mean return >= -250.

For each it also measures the floor (scripts/floors.py: the env alone plus the learner alone
in a plain torch loop) and prints rlexp's speed as a percentage of it, with the split of
rlexp's time (acting, env, replay, update, other, setup). For each it prints agent steps/s (training only: rlexp's evaluations are subtracted, SB3's
learn() has none), the final greedy evaluation, and the learning curve: the mean return
of the training episodes that ended in each quarter of the run, which shows whether
the two learn alike (the speed ratio means little otherwise).

    python scripts/bench_ppo.py                          # all three, seed 1
    python scripts/bench_ppo.py --envs cartpole --seeds 1 2 3
    python scripts/bench_ppo.py --envs pong --steps 16384
    python scripts/bench_ppo.py --device cuda            # on a GPU machine
    python scripts/bench_ppo.py --envs cartpole --variants amp compile   # rlexp with device.amp / device.compile too

Target (issue 4): rlexp >= 1.5x SB3's agent steps/s at equal learning curves, on CPU. On
CartPole, SBX (Stable-Baselines in JAX, `pip install -e '.[bench]'`) runs beside them with
the same settings and XLA on the same thread count (issue 16: rlexp faster than SBX).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import floors  # scripts/floors.py: the floor and rlexp's time split
import machine  # scripts/machine.py: the CPU model (and GPU) for every figure
import numpy as np

# SB3 names; the matching rlexp values come from the preset named in "rlexp" (checked in main()).
SETTINGS = {
    "cartpole": dict(
        title="CartPole-v1 (RL Zoo's tuned PPO, 8 envs)", steps=100_000, eval_episodes=10,
        rlexp=["algo=ppo", "env=cartpole"],
        n_envs=8, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
        learning_rate=1e-3, lr_anneal=True, clip_range=0.2, clip_anneal=True, clip_vf=False, net_arch=[64, 64],
    ),
    "pong": dict(
        title="Pong (PPO paper's Atari setting, 8 envs)", steps=8192, eval_episodes=1,
        rlexp=["experiment=ppo_pong_schulman2017", "env.max_episode_frames=4000"],
        n_envs=8, n_steps=128, batch_size=256, gae_lambda=0.95, gamma=0.99, n_epochs=4, ent_coef=0.01,
        learning_rate=2.5e-4, lr_anneal=True, clip_range=0.1, clip_anneal=True, clip_vf=True, vf_coef=0.5,
    ),
    "pendulum": dict(
        title="Pendulum-v1 (continuous; RL Zoo's tuned PPO without gSDE, 4 envs)", steps=200_000, eval_episodes=10,
        rlexp=["experiment=ppo_pendulum"],
        n_envs=4, n_steps=1024, batch_size=64, gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0,
        learning_rate=1e-3, lr_anneal=True, clip_range=0.2, clip_anneal=False, clip_vf=False, net_arch=[64, 64],
    ),
}
QUARTERS = 4


def _curve(points: list[tuple[int, float]], steps: int) -> list[float]:
    """Mean episode return per quarter of the run, from (end step, return) pairs."""
    out = []
    for q in range(QUARTERS):
        lo, hi = steps * q / QUARTERS, steps * (q + 1) / QUARTERS
        inside = [r for s, r in points if lo < s <= hi]
        out.append(float(np.mean(inside)) if inside else float("nan"))
    return out


VARIANTS = {"amp": ["device.amp=true"], "compile": ["device.compile=true"]}  # rlexp's device.* speed settings


def rlexp_config(env: str, steps: int, seed: int, device: str, variant: str | None = None):
    """rlexp's config for the case (its preset, the bench's run length, no periodic eval)."""
    from rlexp.config import compose

    s = SETTINGS[env]
    overrides = [*s["rlexp"], f"total_steps={steps}", "eval_interval_steps=0", f"eval_episodes={s['eval_episodes']}",
                 "checkpoint_interval_steps=0", "logger=none", "logger.progress=none", f"device={device}",
                 f"seed={seed}", f"logger.log_interval_steps={steps // QUARTERS}", *VARIANTS.get(variant, [])]
    return compose(overrides)


def ppo_updates(cfg, steps: int) -> int:
    """Minibatch updates PPO makes in ``steps`` agent steps (no early stop)."""
    a = cfg.algo
    return steps // (a.rollout_steps * cfg.env.num_envs) * a.update_epochs * a.num_minibatches


def run_floor(env: str, steps: int, seed: int, device: str) -> dict:
    cfg = rlexp_config(env, steps, seed, device)
    return floors.measure(cfg, "ppo", ppo_updates(cfg, steps), steps, device)


def run_rlexp(env: str, steps: int, seed: int, device: str, variant: str | None = None) -> dict:
    from rlexp.loggers.jsonl import read_metrics
    from rlexp.train import run

    s = SETTINGS[env]
    cfg = rlexp_config(env, steps, seed, device, variant)
    a = cfg.algo
    ours = dict(n_envs=cfg.env.num_envs, n_steps=a.rollout_steps, batch_size=a.rollout_steps * cfg.env.num_envs
                // a.num_minibatches, gae_lambda=a.gae_lambda, gamma=a.gamma, n_epochs=a.update_epochs,
                ent_coef=a.ent_coef, learning_rate=a.lr, lr_anneal=a.anneal_lr, clip_range=a.clip_coef,
                clip_anneal=a.anneal_clip, clip_vf=a.clip_value_loss)
    differ = {k: (v, s[k]) for k, v in ours.items() if s[k] != v}
    if differ:
        raise SystemExit(f"rlexp's preset and the SB3 settings differ: {differ}")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = run(cfg, Path(tmp) / "run")
        wall = time.perf_counter() - start
        events = read_metrics(Path(tmp) / "run" / "metrics.jsonl")
    train_wall = wall - (summary["wall_s"] - summary["train_wall_s"])  # without rlexp's final evaluation
    curve = [e.get("train/episode_return", float("nan")) for e in events if "perf/sps" in e][:QUARTERS]
    return {"wall_s": train_wall, "eval_return": summary["eval_return_mean"], "curve": curve,
            "split": summary["time_split_s"], "whole_wall_s": wall}


def run_sb3(env: str, steps: int, seed: int, device: str, library: str = "sb3") -> dict:
    """SB3's PPO, or with ``library="sbx"`` SBX's (Stable-Baselines in JAX: the same API, the
    same settings; CartPole only here)."""
    import gymnasium as gym
    from stable_baselines3.common.callbacks import BaseCallback

    if library == "sbx":
        from sbx import PPO
    else:
        from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    s = SETTINGS[env]
    start = time.perf_counter()  # from the envs' construction, as rlexp's run() is timed
    if env == "pong":
        import ale_py
        from stable_baselines3.common.env_util import make_atari_env
        from stable_baselines3.common.vec_env import VecFrameStack

        gym.register_envs(ale_py)
        venv = VecFrameStack(make_atari_env("ALE/Pong-v5", n_envs=s["n_envs"], seed=seed,
                                            env_kwargs={"frameskip": 1, "repeat_action_probability": 0.0}), 4)
        kwargs = dict(policy="CnnPolicy", vf_coef=s["vf_coef"])
    else:
        venv = make_vec_env({"cartpole": "CartPole-v1", "pendulum": "Pendulum-v1"}[env], n_envs=s["n_envs"], seed=seed)
        kwargs = dict(policy="MlpPolicy", policy_kwargs={"net_arch": s["net_arch"]})
    lr, clip = s["learning_rate"], s["clip_range"]
    clip_schedule = (lambda f: clip * f) if s["clip_anneal"] else clip  # RL Zoo's lin_ schedules

    class Episodes(BaseCallback):
        """(step, return) of every finished training episode (Monitor's info)."""

        def __init__(self):
            super().__init__()
            self.points: list[tuple[int, float]] = []

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.points.append((self.num_timesteps, info["episode"]["r"]))
            return True

    episodes = Episodes()
    model = PPO(env=venv, n_steps=s["n_steps"], batch_size=s["batch_size"], gae_lambda=s["gae_lambda"],
                gamma=s["gamma"], n_epochs=s["n_epochs"], ent_coef=s["ent_coef"],
                learning_rate=(lambda f: lr * f) if s["lr_anneal"] else lr, clip_range=clip_schedule,
                clip_range_vf=clip_schedule if s["clip_vf"] else None, seed=seed, verbose=0,
                **({} if library == "sbx" else {"device": device}), **kwargs)
    model.learn(steps, callback=episodes)
    wall = time.perf_counter() - start
    returns, _ = evaluate_policy(model, model.get_env(), n_eval_episodes=s["eval_episodes"], deterministic=True)
    return {"wall_s": wall, "eval_return": float(np.mean(returns)), "curve": _curve(episodes.points, steps)}


def _has_sbx() -> bool:
    """SBX (a bench extra) is installed; without it the table has no SBX column."""
    import importlib.util

    return importlib.util.find_spec("sbx") is not None


def _child(name: str, env: str, steps: int, seed: int, device: str) -> dict:
    library, _, variant = name.partition("+")
    cmd = [sys.executable, __file__, "--child", library, "--envs", env, "--steps", str(steps), "--seeds", str(seed),
           "--device", device, *(["--variants", variant] if variant else [])]
    import torch

    threads = torch.get_num_threads()  # the same count for torch and JAX's XLA
    env_vars = {**os.environ, "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
                f"intra_op_parallelism_threads={threads}"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env_vars)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        sys.exit(f"{name} on {env} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--steps", type=int, default=None, help="agent steps per run (default: per env, see above)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", nargs="*", choices=list(VARIANTS), default=[],
                        help="also time rlexp with these device settings (amp: bfloat16 autocast; compile: torch.compile)")
    parser.add_argument("--child", choices=["rlexp", "sb3", "sbx", "floor"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        env, seed = args.envs[0], args.seeds[0]
        steps = args.steps or SETTINGS[env]["steps"]
        if args.child == "floor":
            print("RESULT " + json.dumps(run_floor(env, steps, seed, args.device)), flush=True)
            return
        if args.child == "rlexp":
            result = run_rlexp(env, steps, seed, args.device, args.variants[0] if args.variants else None)
        else:
            result = run_sb3(env, steps, seed, args.device, args.child)
        result["sps"] = steps / result["wall_s"]
        print("RESULT " + json.dumps(result), flush=True)
        return

    import torch

    gpu = f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""
    print(f"machine: {machine.describe()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, device {args.device}{gpu}; seeds {args.seeds}")
    for env in args.envs:
        steps = args.steps or SETTINGS[env]["steps"]
        print(f"\n{SETTINGS[env]['title']}, {steps} agent steps per run")
        names = ["rlexp", *(f"rlexp+{v}" for v in args.variants), "sb3", *(["sbx"] if env == "cartpole" and _has_sbx()
                                                                          else [])]
        sps: dict[str, list[float]] = {name: [] for name in names}
        floor_runs: list[dict] = []
        for seed in args.seeds:
            for name in names:  # alternating per seed: drift in machine speed hits all alike
                r = _child(name, env, steps, seed, args.device)
                sps[name].append(r["sps"])
                curve = " ".join(f"{v:7.1f}" for v in r["curve"])
                print(f"  {name:<13} seed {seed}: {r['sps']:7.0f} agent steps/s, final eval {r['eval_return']:7.1f}, "
                      f"training return by quarter: {curve}", flush=True)
                if name == "rlexp":
                    print(f"  {'':13} where rlexp's {r['whole_wall_s']:.1f} s went: "
                          f"{floors.describe_split(r['split'], r['whole_wall_s'])}", flush=True)
            floor_runs.append(_child("floor", env, steps, seed, args.device))
        floor = {k: (float(np.mean([f[k] for f in floor_runs])) if k.endswith(("_s", "flops", "rate")) else v)
                 for k, v in floor_runs[0].items()}
        print("  " + floors.describe(floor, steps, float(np.mean(sps["rlexp"]))).replace("\n", "\n  "))
        ratio = np.mean(sps["rlexp"]) / np.mean(sps["sb3"])
        print(f"  ratio rlexp/sb3 steps/s: {ratio:.2f}x (targets: >= 1.5x issue 4; issue 16: CartPole >= 2.5x, "
              "Pong >= 2x)")
        if sps.get("sbx"):
            print(f"  ratio rlexp/sbx steps/s: {np.mean(sps['rlexp']) / np.mean(sps['sbx']):.2f}x (target > 1x)")
        for v in args.variants:
            print(f"  effect of device.{v}: {np.mean(sps[f'rlexp+{v}']) / np.mean(sps['rlexp']):.2f}x rlexp's steps/s")


if __name__ == "__main__":
    main()
