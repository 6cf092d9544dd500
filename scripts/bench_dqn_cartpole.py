"""rlexp DQN vs its peers on CartPole-v1, same hyperparameters, one invocation, and the floor.

All use RL Zoo's tuned CartPole-v1 DQN settings (rl-baselines3-zoo hyperparams/dqn.yml),
which are rlexp's `algo=dqn` defaults. Each library runs in its own subprocess with the same
torch/XLA thread count: rlexp, Stable-Baselines3, and SBX (Stable-Baselines in JAX, the
fast CPU peer; `pip install -e '.[bench]'`; skipped with a note when it is not installed).
Each run is timed from construction to the end of a final 10-episode greedy evaluation.

The floor of a sequential implementation, measured in the same invocation (scripts/floors.py):
the env alone (rlexp's vector env, the same agent steps, random actions) plus the learner
alone (the same number of updates of the same network, batch and optimizer, on synthetic
data, in a tight plain-torch loop). rlexp's time is printed as a percentage of that floor's
speed, and split into acting, env, replay, update, other and setup.

    python scripts/bench_dqn_cartpole.py                   # seed 1, 50k agent steps
    python scripts/bench_dqn_cartpole.py --seeds 1 2 3     # several seeds, means reported
    python scripts/bench_dqn_cartpole.py --threads 2       # same torch thread count for both
    python scripts/bench_dqn_cartpole.py --variants amp compile   # also rlexp with device.amp / device.compile

Targets: issue 2, rlexp >= 2x SB3's agent steps/s at an equal return; issue 16, >= 3x SB3,
faster than SBX, and >= 70% of the floor.
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
import torch

# RL Zoo, hyperparams/dqn.yml, CartPole-v1
ZOO = dict(
    n_timesteps=50_000,
    learning_rate=2.3e-3,
    batch_size=64,
    buffer_size=100_000,
    learning_starts=1_000,
    gamma=0.99,
    target_update_interval=10,
    train_freq=256,
    gradient_steps=128,
    exploration_fraction=0.16,
    exploration_final_eps=0.04,
    net_arch=[256, 256],
)
EVAL_EPISODES = 10


VARIANTS = {"amp": ["device.amp=true"], "compile": ["device.compile=true"]}  # rlexp's device.* speed settings


def rlexp_config(seed: int, steps: int, threads: int | None, device: str, variant: str | None = None):
    """rlexp's config for the case: the RL Zoo values as overrides."""
    from rlexp.config import compose

    overrides = [
        f"seed={seed}", f"total_steps={steps}", "eval_interval_steps=0", f"eval_episodes={EVAL_EPISODES}",
        "checkpoint_interval_steps=0", "logger=none", "logger.progress=none", f"device={device}",
        f"algo.lr={ZOO['learning_rate']}", f"algo.batch_size={ZOO['batch_size']}",
        f"algo.buffer_capacity_transitions={ZOO['buffer_size']}", f"algo.learning_starts_steps={ZOO['learning_starts']}",
        f"algo.gamma={ZOO['gamma']}", f"algo.target_update_interval_steps={ZOO['target_update_interval']}",
        f"algo.train_interval_steps={ZOO['train_freq']}", f"algo.updates_per_train={ZOO['gradient_steps']}",
        f"algo.epsilon_decay_steps={int(ZOO['exploration_fraction'] * steps)}",
        f"algo.epsilon_end={ZOO['exploration_final_eps']}", f"network.hidden_sizes={ZOO['net_arch']}".replace(" ", ""),
    ]
    if threads is not None:
        overrides.append(f"device.torch_threads={threads}")
    overrides += VARIANTS.get(variant, [])
    return compose(overrides)


def bench_rlexp(seed: int, steps: int, threads: int | None, device: str, variant: str | None = None) -> dict:
    from rlexp.train import run

    cfg = rlexp_config(seed, steps, threads, device, variant)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = run(cfg, Path(tmp) / "run")
        wall = time.perf_counter() - start
    return {"sps": steps / wall, "return": summary["eval_return_mean"], "wall_s": wall,
            "split": summary["time_split_s"]}


def bench_sb3(seed: int, steps: int, threads: int | None, device: str, flush_denormal: bool = False,
              library: str = "sb3") -> dict:
    """SB3's DQN, or with ``library="sbx"`` SBX's (Stable-Baselines in JAX: the same API and settings)."""
    import gymnasium as gym
    from stable_baselines3.common.evaluation import evaluate_policy

    if library == "sbx":
        from sbx import DQN
    else:
        from stable_baselines3 import DQN

        torch.set_num_threads(threads or torch.get_num_threads())
        torch.set_flush_denormal(flush_denormal)  # off: SB3 as users run it
    start = time.perf_counter()
    model = DQN(
        "MlpPolicy", gym.make("CartPole-v1"),
        learning_rate=ZOO["learning_rate"], batch_size=ZOO["batch_size"], buffer_size=ZOO["buffer_size"],
        learning_starts=ZOO["learning_starts"], gamma=ZOO["gamma"],
        target_update_interval=ZOO["target_update_interval"], train_freq=ZOO["train_freq"],
        gradient_steps=ZOO["gradient_steps"], exploration_fraction=ZOO["exploration_fraction"],
        exploration_final_eps=ZOO["exploration_final_eps"], policy_kwargs={"net_arch": ZOO["net_arch"]},
        seed=seed, verbose=0, **({} if library == "sbx" else {"device": device}),
    )
    model.learn(steps)
    returns, _ = evaluate_policy(model, gym.make("CartPole-v1"), n_eval_episodes=EVAL_EPISODES,
                                 deterministic=True, return_episode_rewards=True)
    wall = time.perf_counter() - start
    return {"sps": steps / wall, "return": float(np.mean(returns))}


def dqn_updates(steps: int) -> int:
    """The updates rlexp's and SB3's DQN make in ``steps`` agent steps with the RL Zoo settings."""
    return max(0, steps - ZOO["learning_starts"]) // ZOO["train_freq"] * ZOO["gradient_steps"]


CHILDREN = {"rlexp": bench_rlexp, "sb3": bench_sb3, "sbx": bench_sb3}


def child(name: str, seed: int, steps: int, threads: int | None, device: str, variant: str | None,
          flush_denormal: bool) -> None:
    if threads:
        torch.set_num_threads(threads)
    if name == "floor":
        cfg = rlexp_config(seed, steps, threads, device)
        print("RESULT " + json.dumps(floors.measure(cfg, "dqn", dqn_updates(steps), steps, device)))
        return
    extra = {"variant": variant} if name == "rlexp" else {"flush_denormal": flush_denormal, "library": name}
    print("RESULT " + json.dumps(CHILDREN[name](seed, steps, threads, device, **extra)))


def run_child(name: str, seed: int, args, variant: str | None = None) -> dict | None:
    """One measurement in its own subprocess (same thread count for torch and XLA); None if the
    library is not installed (SBX is a bench extra)."""
    threads = args.threads or torch.get_num_threads()
    env = {**os.environ, "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
           f"intra_op_parallelism_threads={threads}", "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, __file__, "--child", name, "--seeds", str(seed), "--steps", str(args.steps),
           "--device", args.device, "--threads", str(threads), *(["--variant", variant] if variant else []),
           *(["--sb3-flush-denormal"] if args.sb3_flush_denormal else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        if "No module named 'sbx'" in out.stderr or "No module named 'jax'" in out.stderr:
            return None
        sys.exit(f"{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--steps", type=int, default=ZOO["n_timesteps"], help="agent steps per run")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads for both (default: each library's own default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--variants", nargs="*", choices=list(VARIANTS), default=[],
                        help="also time rlexp with these device settings (amp: bfloat16 autocast; compile: torch.compile)")
    parser.add_argument("--sb3-flush-denormal", action="store_true",
                        help="give SB3 rlexp's flush-denormal CPU setting too (isolates that effect)")
    parser.add_argument("--child", choices=[*CHILDREN, "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.seeds[0], args.steps, args.threads, args.device, args.variant, args.sb3_flush_denormal)
        return

    threads = args.threads or torch.get_num_threads()
    print(f"machine: {machine.describe(args.device)}, {threads} threads per subprocess (torch, XLA),"
          f" torch {torch.__version__}, device {args.device}")
    runners = [("rlexp", None), *((f"rlexp+{v}", v) for v in args.variants), ("sb3", None), ("sbx", None)]
    rows: dict[str, list] = {name: [] for name, _ in runners}
    floor_runs = []
    for seed in args.seeds:
        # every library per seed, one after the other: drift in machine speed hits all alike
        for name, variant in runners:
            result = run_child(name.split("+")[0], seed, args, variant)
            if result is None:
                print(f"  {name:<13} seed {seed}: not installed (pip install -e '.[bench]')", flush=True)
                continue
            rows[name].append((result["sps"], result["return"]))
            print(f"  {name:<13} seed {seed}: {result['sps']:7.0f} agent steps/s, final eval return "
                  f"{result['return']:6.1f}", flush=True)
            if "split" in result:
                print(f"  {'':13} where rlexp's {result['wall_s']:.1f} s went: "
                      f"{floors.describe_split(result['split'], result['wall_s'])}", flush=True)
        floor_runs.append(run_child("floor", seed, args))
    print(f"\nCartPole-v1 DQN, {args.steps} agent steps, RL Zoo hyperparameters, {len(args.seeds)} seed(s):")
    print(f"{'':14}{'steps/s':>10}{'eval return':>14}")
    means = {}
    for name, values in rows.items():
        if not values:
            continue
        sps = float(np.mean([v[0] for v in values]))
        ret = float(np.mean([v[1] for v in values]))
        means[name] = sps
        print(f"{name:<14}{sps:>10.0f}{ret:>14.1f}")
    floor = {k: (float(np.mean([f[k] for f in floor_runs])) if k.endswith(("_s", "flops", "rate")) else v)
             for k, v in floor_runs[0].items()}
    print(floors.describe(floor, args.steps, means["rlexp"]))
    print(f"ratio rlexp/sb3 steps/s: {means['rlexp'] / means['sb3']:.2f}x (targets: >= 2x issue 2, >= 3x issue 16)")
    if "sbx" in means:
        print(f"ratio rlexp/sbx steps/s: {means['rlexp'] / means['sbx']:.2f}x (target > 1x)")
    for v in args.variants:
        print(f"effect of device.{v}: {means[f'rlexp+{v}'] / means['rlexp']:.2f}x rlexp's steps/s")


if __name__ == "__main__":
    main()
