"""rlexp SAC and TD3 vs Stable-Baselines3 and SBX on a MuJoCo task, same settings, one invocation.

Each library runs in its own subprocess with the same torch/XLA thread count: rlexp,
Stable-Baselines3 and SBX (Stable-Baselines in JAX, the fast CPU peer; `pip install -e
'.[bench]'`; skipped with a note when it is not installed). Every library uses the papers'
values (256-256 ReLU networks, batch 256, Adam 3e-4, one update per agent step, tau 0.005;
SAC's temperature tuned toward -dim(A); TD3's delay 2 and noises 0.1 / 0.2 / 0.5), with
learning starting after ``--learning-starts`` random steps, so that a short run is mostly
updates. Each run is timed from construction to the end of a final 10-episode deterministic
evaluation, whose mean return is printed beside the speed.

Beside the measured speeds, the floor (scripts/floors.py: the env alone plus rlexp's own
learner alone, the fastest code we know, so rlexp is at most 100% of it) and the arithmetic
bound: the matrix products of the updates and the actions (counted by torch's
FlopCounterMode on rlexp's learner), at the matmul rate this machine measures in the same
invocation for the update's shapes, as agent steps per second. A learner at the bound does
nothing but arithmetic; rlexp's share of it says how much headroom is left.

    python scripts/bench_sac.py                                   # SAC, Hopper-v5, 20k steps (15k updates), seed 1
    python scripts/bench_sac.py --seeds 1 2 3                     # every library per seed in turn, the mean speeds
    python scripts/bench_sac.py --algo td3 --env HalfCheetah-v5 --threads 2
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

import floors  # scripts/floors.py: the floor, the arithmetic bound and rlexp's time split
import machine  # scripts/machine.py: the CPU model (and GPU) for every figure
import torch

HIDDEN = [256, 256]
BATCH = 256
EVAL_EPISODES = 10  # the final deterministic evaluation every library runs (inside the timing)


def rlexp_config(algo: str, env_id: str, steps: int, starts: int, seed: int, device: str, threads: int):
    from rlexp.config import compose

    return compose([f"algo={algo}", "env=gym", f"env.id={env_id}", f"total_steps={steps}", "eval_interval_steps=0",
                    f"eval_episodes={EVAL_EPISODES}", "checkpoint_interval_steps=0", "logger=none", "logger.progress=none",
                    f"device={device}", f"device.torch_threads={threads}", f"seed={seed}",
                    f"algo.learning_starts_steps={starts}", f"logger.log_interval_steps={steps}",
                    "network=mlp", f"network.hidden_sizes={HIDDEN}".replace(" ", "")])


def bench_rlexp(algo, env_id, steps, starts, seed, device, threads) -> dict:
    from rlexp.train import run

    cfg = rlexp_config(algo, env_id, steps, starts, seed, device, threads)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = run(cfg, Path(tmp) / "run")
        wall = time.perf_counter() - start
    return {"sps": steps / wall, "wall_s": wall, "split": summary["time_split_s"], "return": summary["eval_return_mean"]}


def bench_peer(algo, env_id, steps, starts, seed, device, threads, library: str) -> dict:
    import gymnasium as gym

    if library == "sbx":
        import sbx as lib
    else:
        import stable_baselines3 as lib

        torch.set_num_threads(threads)
    cls = {"sac": lib.SAC, "td3": lib.TD3}[algo]
    extra = {} if library == "sbx" else {"device": device}
    if algo == "td3":
        import numpy as np
        from stable_baselines3.common.noise import NormalActionNoise

        env = gym.make(env_id)
        dims = env.action_space.shape[0]
        half = float(env.action_space.high[0])
        extra.update(action_noise=NormalActionNoise(np.zeros(dims), 0.1 * half * np.ones(dims)), policy_delay=2,
                     target_policy_noise=0.2, target_noise_clip=0.5)
    start = time.perf_counter()
    model = cls("MlpPolicy", gym.make(env_id), learning_rate=3e-4, buffer_size=1_000_000, learning_starts=starts,
                batch_size=BATCH, tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1,
                policy_kwargs={"net_arch": HIDDEN}, seed=seed, verbose=0, **extra)
    model.learn(steps)
    from stable_baselines3.common.evaluation import evaluate_policy

    returns, _ = evaluate_policy(model, gym.make(env_id), n_eval_episodes=EVAL_EPISODES, deterministic=True,
                                 return_episode_rewards=True)
    wall = time.perf_counter() - start
    return {"sps": steps / wall, "wall_s": wall, "return": float(sum(returns) / len(returns))}


def child(args) -> None:
    torch.set_num_threads(args.threads)
    common = (args.algo, args.env, args.steps, args.learning_starts, args.seeds[0], args.device, args.threads)
    if args.child == "rlexp":
        result = bench_rlexp(*common)
    elif args.child == "floor":
        cfg = rlexp_config(*common)
        result = floors.measure(cfg, "off_policy", args.steps - args.learning_starts, args.steps, args.device)
    else:
        result = bench_peer(*common, library=args.child)
    print("RESULT " + json.dumps(result))


def run_child(name: str, seed: int, args) -> dict | None:
    env = {**os.environ, "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={'true' if args.threads > 1 else 'false'} "
           f"intra_op_parallelism_threads={args.threads}", "OMP_NUM_THREADS": str(args.threads)}
    cmd = [sys.executable, __file__, "--child", name, "--algo", args.algo, "--env", args.env, "--steps",
           str(args.steps), "--learning-starts", str(args.learning_starts), "--seeds", str(seed), "--device",
           args.device, "--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        if any(f"No module named '{m}'" in out.stderr for m in ("sbx", "jax", "stable_baselines3")):
            return None
        sys.exit(f"{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", choices=["sac", "td3"], default="sac")
    parser.add_argument("--env", default="Hopper-v5", help="a gymnasium id with Box actions")
    parser.add_argument("--steps", type=int, default=20_000, help="agent steps per run")
    parser.add_argument("--learning-starts", type=int, default=5_000, help="random steps before the first update")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1],
                        help="one run per library per seed, the libraries in turn; the speeds are the seeds' means")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--child", choices=["rlexp", "sb3", "sbx", "floor"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(f"machine: {machine.describe(args.device)}, {args.threads} threads per subprocess (torch, XLA), "
          f"torch {torch.__version__}, device {args.device}")
    print(f"{args.algo.upper()} on {args.env}, {args.steps} agent steps ({args.steps - args.learning_starts} "
          f"updates), seed(s) {' '.join(map(str, args.seeds))}:")
    runs: dict[str, list[float]] = {}
    for seed in args.seeds:
        # every library per seed, one after the other: drift in machine speed hits all alike
        for name in ("rlexp", "sb3", "sbx"):
            result = run_child(name, seed, args)
            if result is None:
                print(f"  {name:<6} not installed (pip install -e '.[bench]')")
                continue
            runs.setdefault(name, []).append(result["sps"])
            split = ", ".join(f"{k} {v:.1f} s" for k, v in result.get("split", {}).items())
            print(f"  {name:<6} seed {seed}: {result['sps']:7.1f} agent steps/s ({result['wall_s']:.1f} s), final eval "
                  f"return {result['return']:.1f}{'; ' + split if split else ''}", flush=True)
    speeds = {name: sum(values) / len(values) for name, values in runs.items()}
    if len(args.seeds) > 1:
        print("  mean agent steps/s: " + ", ".join(f"{name} {sps:.1f}" for name, sps in speeds.items()))
    floor = run_child("floor", args.seeds[0], args)
    for name in ("sb3", "sbx"):
        if name in speeds:
            print(f"ratio rlexp/{name} steps/s: {speeds['rlexp'] / speeds[name]:.2f}x (targets: >= 3x sb3, >= 1.2x sbx)")
    print(floors.describe(floor, args.steps, speeds["rlexp"]))


if __name__ == "__main__":
    main()
