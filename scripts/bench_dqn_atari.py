"""rlexp DQN vs Stable-Baselines3 DQN on Atari Pong, same hyperparameters, one invocation.

A shortened Nature-DQN setting (small replay, few learning starts, so it fits a benchmark),
the DeepMind preprocessing on both sides (rlexp: ale-py's vector env; SB3: its AtariWrapper
over gymnasium's ALE env), Adam, one update every 4 agent steps. Each library runs in its
own subprocess, one after the other, so peak resident memory is measured per library.

    python scripts/bench_dqn_atari.py                       # CPU, 6,000 agent steps each
    python scripts/bench_dqn_atari.py --steps 20000
    python scripts/bench_dqn_atari.py --device cuda         # on a GPU machine
    python scripts/bench_dqn_atari.py --variants amp        # rlexp with device.amp (bfloat16) too

It also measures the floor (scripts/floors.py: the env alone plus the learner alone in a
plain torch loop) and splits rlexp's time (acting, env, replay, update, other, setup).

Targets (issue 3): rlexp >= 1.5x SB3's agent steps/s on CPU; >= 3x on the same GPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import floors  # scripts/floors.py: the floor and rlexp's time split
import machine  # scripts/machine.py: the CPU model (and GPU) for every figure

SETTINGS = dict(
    game="pong",
    buffer_size=10_000,  # transitions (paper: 1M; shortened)
    learning_starts=1_000,  # agent steps (paper: 50k; shortened)
    batch_size=32,
    lr=1e-4,  # Adam, as most reproductions
    gamma=0.99,
    train_freq=4,  # agent steps per update (paper)
    target_update_interval=1_000,  # agent steps (paper: 10k; shortened)
    exploration_final_eps=0.1,
    exploration_steps=5_000,  # agent steps of linear epsilon decay (shortened)
)


VARIANTS = {"amp": ["device.amp=true"]}  # rlexp's device.* speed settings (bfloat16 autocast)


def rlexp_config(steps: int, device: str, variant: str | None = None):

    from rlexp.config import compose

    s = SETTINGS
    overrides = [
        f"env={s['game']}", f"total_steps={steps}", "eval_interval_steps=0", "eval_episodes=1",
        "checkpoint_interval_steps=0", "logger=none", "logger.progress=none", f"device={device}",
        "algo.optimizer=adam", f"algo.lr={s['lr']}", "algo.optimizer_eps=1e-8", f"algo.gamma={s['gamma']}",
        f"algo.buffer_capacity_transitions={s['buffer_size']}", f"algo.learning_starts_steps={s['learning_starts']}",
        f"algo.batch_size={s['batch_size']}", f"algo.train_interval_steps={s['train_freq']}", "algo.updates_per_train=1",
        f"algo.target_update_interval_steps={s['target_update_interval']}", "algo.epsilon_start=1.0",
        f"algo.epsilon_end={s['exploration_final_eps']}", f"algo.epsilon_decay_steps={s['exploration_steps']}",
        "algo.max_grad_norm=10",  # SB3's default clip
        *VARIANTS.get(variant, []),
    ]
    return compose(overrides)


def run_rlexp(steps: int, device: str, variant: str | None = None) -> dict:
    from rlexp.train import run

    cfg = rlexp_config(steps, device, variant)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = run(cfg, Path(tmp) / "run")
        wall = time.perf_counter() - start
    # SB3's learn() below includes no evaluation: time rlexp without its closing eval/checkpoint
    return {"wall_s": wall - (summary["wall_s"] - summary["train_wall_s"]), "whole_wall_s": wall,
            "split": summary["time_split_s"]}


def updates(steps: int) -> int:
    s = SETTINGS
    return max(0, steps - s["learning_starts"]) // s["train_freq"]


def run_floor(steps: int, device: str) -> dict:
    cfg = rlexp_config(steps, device)
    return floors.measure(cfg, "dqn", updates(steps), steps, device)


def run_sb3(steps: int, device: str) -> dict:
    import ale_py
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    s = SETTINGS
    start = time.perf_counter()  # from the env's construction, as rlexp's run() is timed
    env = make_atari_env("ALE/Pong-v5", n_envs=1, seed=0,
                         env_kwargs={"frameskip": 1, "repeat_action_probability": 0.0})
    env = VecFrameStack(env, n_stack=4)
    model = DQN(
        "CnnPolicy", env, learning_rate=s["lr"], buffer_size=s["buffer_size"], learning_starts=s["learning_starts"],
        batch_size=s["batch_size"], gamma=s["gamma"], train_freq=s["train_freq"], gradient_steps=1,
        target_update_interval=s["target_update_interval"], exploration_fraction=s["exploration_steps"] / steps,
        exploration_final_eps=s["exploration_final_eps"], optimize_memory_usage=False, device=device, verbose=0,
        seed=0,
    )
    model.learn(steps)
    return {"wall_s": time.perf_counter() - start}


def child(name: str, steps: int, device: str, variant: str | None) -> None:
    if name == "floor":
        print("RESULT " + json.dumps(run_floor(steps, device)), flush=True)
        return
    result = run_rlexp(steps, device, variant) if name == "rlexp" else run_sb3(steps, device)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["sps"] = steps / result["wall_s"]
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6_000, help="agent steps per library")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--variants", nargs="*", choices=list(VARIANTS), default=[],
                        help="also time rlexp with these device settings (amp: bfloat16 autocast)")
    parser.add_argument("--child", choices=["rlexp", "sb3", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.steps, args.device, args.variant)
        return

    import torch

    gpu = f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""
    print(f"machine: {machine.describe()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"device {args.device}{gpu}")
    print(f"Pong, DQN, {args.steps} agent steps each, settings: {SETTINGS}")
    results = {}
    for name in ("rlexp", *(f"rlexp+{v}" for v in args.variants), "sb3", "floor"):
        library, _, variant = name.partition("+")
        out = subprocess.run([sys.executable, __file__, "--child", library, "--steps", str(args.steps),
                              "--device", args.device, *(["--variant", variant] if variant else [])],
                             capture_output=True, text=True, check=False)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            sys.exit(f"{name} failed:\n{out.stderr[-3000:]}")
        results[name] = json.loads(lines[-1][len("RESULT "):])
        r = results[name]
        if name == "floor":
            print("  " + floors.describe(r, args.steps, results["rlexp"]["sps"]).replace("\n", "\n  "))
            continue
        print(f"  {name:<9}: {r['sps']:7.1f} agent steps/s (setup + training, no evaluation), "
              f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
        if library == "rlexp":
            print(f"             where {name}'s {r['whole_wall_s']:.1f} s went: "
                  f"{floors.describe_split(r['split'], r['whole_wall_s'])}", flush=True)
    print(f"ratio rlexp/sb3 steps/s: {results['rlexp']['sps'] / results['sb3']['sps']:.2f}x "
          f"(targets: >= 1.5x on CPU, issue 16: >= 2x; >= 3x on GPU)")
    for v in args.variants:
        print(f"ratio rlexp+{v}/sb3 steps/s: {results[f'rlexp+{v}']['sps'] / results['sb3']['sps']:.2f}x "
              f"(device.{v} changes the numerics: bfloat16)")


if __name__ == "__main__":
    main()
