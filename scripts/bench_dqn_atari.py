"""The DQN family on Atari Pong against its packaged peers, same hyperparameters, one invocation.

Cases (``--algos``, all by default):

- ``dqn``: rlexp's DQN vs Stable-Baselines3's DQN;
- ``qr_dqn``: rlexp's QR-DQN (algo=qr_dqn, 200 quantiles) vs sb3-contrib's QRDQN;
- ``der``: rlexp's data-efficient Rainbow (experiment=der_atari100k: all six parts, one update
  per agent step). No package ships a PyTorch Rainbow to race (Dopamine's is JAX and not on
  PyPI's wheels for this stack), so it prints its floor, its bound and how much of its time
  prioritized replay takes.

A shortened Nature-DQN setting (small replay, few learning starts, so it fits a benchmark),
the DeepMind preprocessing on both sides (rlexp: ale-py's vector env; SB3: its AtariWrapper
over gymnasium's ALE env), Adam, one update every 4 agent steps (DER: every step). Each
library runs in its own subprocess, one after the other, so peak resident memory is
measured per library.

    python scripts/bench_dqn_atari.py                       # CPU, 6,000 agent steps each
    python scripts/bench_dqn_atari.py --algos qr_dqn --steps 20000
    python scripts/bench_dqn_atari.py --device cuda         # on a GPU machine
    python scripts/bench_dqn_atari.py --variants amp        # rlexp with device.amp (bfloat16) too

It also measures the floor (scripts/floors.py: the env alone plus the learner alone in a
plain torch loop) and splits rlexp's time (acting, env, replay, update, other, setup).

Targets: DQN >= 1.5x SB3's agent steps/s on CPU, >= 3x on the same GPU; QR-DQN >= 2x
sb3-contrib's; DER's prioritized sampling and priority updates <= 10% of its update time.
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


# QR-DQN (Dabney et al. 2018; sb3-contrib's defaults): 200 quantiles, Adam 5e-5 with epsilon 0.01 / batch
QR = dict(n_quantiles=200, lr=5e-5, optimizer_eps=0.01 / 32)

VARIANTS = {"amp": ["device.amp=true"]}  # rlexp's device.* speed settings (bfloat16 autocast)
ALGOS = ("dqn", "qr_dqn", "der")
PEERS = {"dqn": "sb3", "qr_dqn": "sb3_contrib", "der": None}


def rlexp_config(steps: int, device: str, variant: str | None = None, algo: str = "dqn"):

    from rlexp.config import compose

    s = SETTINGS
    common = [f"total_steps={steps}", "eval_interval_steps=0", "eval_episodes=1", "checkpoint_interval_steps=0",
              "logger=none", "logger.progress=none", f"device={device}",
              f"algo.buffer_capacity_transitions={s['buffer_size']}", f"algo.learning_starts_steps={s['learning_starts']}",
              *VARIANTS.get(variant, [])]
    if algo == "der":  # DER's own settings (one update per step, its target period), shortened replay and warm-up
        return compose(["experiment=der_atari100k", f"env.game={s['game']}", *common])
    lr, eps = (QR["lr"], QR["optimizer_eps"]) if algo == "qr_dqn" else (s["lr"], 1e-8)
    overrides = [
        f"algo={algo}", f"env={s['game']}", *common,
        "algo.optimizer=adam", f"algo.lr={lr}", f"algo.optimizer_eps={eps}", f"algo.gamma={s['gamma']}",
        f"algo.batch_size={s['batch_size']}", f"algo.train_interval_steps={s['train_freq']}", "algo.updates_per_train=1",
        f"algo.target_update_interval_steps={s['target_update_interval']}", "algo.epsilon_start=1.0",
        f"algo.epsilon_end={s['exploration_final_eps']}", f"algo.epsilon_decay_steps={s['exploration_steps']}",
        "algo.max_grad_norm=10",  # SB3's default clip (given to sb3-contrib's QRDQN too)
        *([f"algo.num_atoms={QR['n_quantiles']}"] if algo == "qr_dqn" else []),
    ]
    return compose(overrides)


def run_rlexp(steps: int, device: str, variant: str | None = None, algo: str = "dqn") -> dict:
    from rlexp.train import run

    cfg = rlexp_config(steps, device, variant, algo)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = run(cfg, Path(tmp) / "run")
        wall = time.perf_counter() - start
    # SB3's learn() below includes no evaluation: time rlexp without its closing eval/checkpoint
    return {"wall_s": wall - (summary["wall_s"] - summary["train_wall_s"]), "whole_wall_s": wall,
            "split": summary["time_split_s"]}


def updates(steps: int, algo: str = "dqn") -> int:
    s = SETTINGS
    return max(0, steps - s["learning_starts"]) // (1 if algo == "der" else s["train_freq"])


def run_floor(steps: int, device: str, algo: str = "dqn") -> dict:
    cfg = rlexp_config(steps, device, algo=algo)
    return floors.measure(cfg, "dqn", updates(steps, algo), steps, device)


def run_sb3(steps: int, device: str, algo: str = "dqn") -> dict:
    """SB3's DQN, or sb3-contrib's QRDQN, on the same settings."""
    import ale_py
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    s = SETTINGS
    start = time.perf_counter()  # from the env's construction, as rlexp's run() is timed
    env = make_atari_env("ALE/Pong-v5", n_envs=1, seed=0,
                         env_kwargs={"frameskip": 1, "repeat_action_probability": 0.0})
    env = VecFrameStack(env, n_stack=4)
    kwargs = dict(
        buffer_size=s["buffer_size"], learning_starts=s["learning_starts"], batch_size=s["batch_size"],
        gamma=s["gamma"], train_freq=s["train_freq"], gradient_steps=1, target_update_interval=s["target_update_interval"],
        exploration_fraction=s["exploration_steps"] / steps, exploration_final_eps=s["exploration_final_eps"],
        optimize_memory_usage=False, device=device, verbose=0, seed=0,
    )
    if algo == "qr_dqn":
        from sb3_contrib import QRDQN

        model = QRDQN("CnnPolicy", env, learning_rate=QR["lr"], max_grad_norm=10, **kwargs,
                      policy_kwargs=dict(n_quantiles=QR["n_quantiles"], optimizer_kwargs=dict(eps=QR["optimizer_eps"])))
    else:
        from stable_baselines3 import DQN

        model = DQN("CnnPolicy", env, learning_rate=s["lr"], **kwargs)
    model.learn(steps)
    return {"wall_s": time.perf_counter() - start}


def child(name: str, steps: int, device: str, variant: str | None, algo: str) -> None:
    if name == "floor":
        print("RESULT " + json.dumps(run_floor(steps, device, algo)), flush=True)
        return
    result = run_rlexp(steps, device, variant, algo) if name == "rlexp" else run_sb3(steps, device, algo)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["sps"] = steps / result["wall_s"]
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6_000, help="agent steps per library")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--algos", nargs="*", choices=ALGOS, default=list(ALGOS), help="the cases to run")
    parser.add_argument("--variants", nargs="*", choices=list(VARIANTS), default=[],
                        help="also time rlexp with these device settings (amp: bfloat16 autocast)")
    parser.add_argument("--child", choices=["rlexp", "sb3", "sb3_contrib", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--algo", choices=ALGOS, default="dqn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.steps, args.device, args.variant, args.algo)
        return

    import torch

    gpu = f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""
    print(f"machine: {machine.describe()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"device {args.device}{gpu}")
    print(f"Pong, {args.steps} agent steps each, settings: {SETTINGS}; QR-DQN: {QR}")
    for algo in args.algos:
        case(algo, args)


def case(algo: str, args) -> None:
    """One algorithm: rlexp (and its variants), its packaged peer, the floor; their lines."""
    peer = PEERS[algo]
    print(f"{algo}:")
    results = {}
    for name in ("rlexp", *(f"rlexp+{v}" for v in args.variants), *([peer] if peer else []), "floor"):
        library, _, variant = name.partition("+")
        out = subprocess.run([sys.executable, __file__, "--child", library, "--steps", str(args.steps),
                              "--device", args.device, "--algo", algo, *(["--variant", variant] if variant else [])],
                             capture_output=True, text=True, check=False)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            sys.exit(f"{algo} {name} failed:\n{out.stderr[-3000:]}")
        results[name] = json.loads(lines[-1][len("RESULT "):])
        r = results[name]
        if name == "floor":
            print("  " + floors.describe(r, args.steps, results["rlexp"]["sps"]).replace("\n", "\n  "))
            continue
        print(f"  {name:<11}: {r['sps']:7.1f} agent steps/s (setup + training, no evaluation), "
              f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
        if library == "rlexp":
            print(f"               where {name}'s {r['whole_wall_s']:.1f} s went: "
                  f"{floors.describe_split(r['split'], r['whole_wall_s'])}", flush=True)
    if algo == "der":
        split = results["rlexp"]["split"]
        share = split.get("replay", 0.0) / max(1e-9, split.get("replay", 0.0) + split.get("update", 0.0))
        print(f"  prioritized replay (adds, sampling, priority updates): {share:.0%} of replay + update time "
              f"(target <= 10%)")
    if peer:
        target = {"dqn": ">= 1.5x on CPU, >= 3x on GPU", "qr_dqn": ">= 2x"}[algo]
        print(f"  ratio rlexp/{peer} steps/s: {results['rlexp']['sps'] / results[peer]['sps']:.2f}x (target {target})")
        for v in args.variants:
            print(f"  ratio rlexp+{v}/{peer} steps/s: {results[f'rlexp+{v}']['sps'] / results[peer]['sps']:.2f}x "
                  f"(device.{v} changes the numerics: bfloat16)")


if __name__ == "__main__":
    main()
