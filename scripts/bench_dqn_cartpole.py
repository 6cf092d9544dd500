"""rlexp DQN vs Stable-Baselines3 DQN on CartPole-v1, same hyperparameters, one invocation.

Both use RL Zoo's tuned CartPole-v1 DQN settings (rl-baselines3-zoo hyperparams/dqn.yml),
which are rlexp's `algo=dqn` defaults. Each run is timed from construction to the end of
a final 10-episode greedy evaluation, on the same device, one after the other.

    python scripts/bench_dqn_cartpole.py                   # seed 1, 50k agent steps
    python scripts/bench_dqn_cartpole.py --seeds 1 2 3     # several seeds, means reported
    python scripts/bench_dqn_cartpole.py --threads 2       # same torch thread count for both
    python scripts/bench_dqn_cartpole.py --variants amp compile   # also rlexp with device.amp / device.compile

Target (issue 2): rlexp >= 2x SB3's agent steps/s at an equal return.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import machine  # scripts/machine.py: the CPU model (and GPU) for every figure

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


def bench_rlexp(seed: int, steps: int, threads: int | None, device: str, variant: str | None = None) -> tuple[float, float]:
    from hydra import compose, initialize_config_module

    from rlexp.config import to_typed
    from rlexp.train import run

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
    with initialize_config_module("rlexp.conf", version_base="1.3"):
        cfg = to_typed(compose("train", overrides=overrides))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = run(cfg, Path(tmp) / "run")
        wall = time.perf_counter() - start
    return steps / wall, summary["eval_return_mean"]


def bench_sb3(seed: int, steps: int, threads: int | None, device: str, flush_denormal: bool = False) -> tuple[float, float]:
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.evaluation import evaluate_policy

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
        seed=seed, device=device, verbose=0,
    )
    model.learn(steps)
    returns, _ = evaluate_policy(model, gym.make("CartPole-v1"), n_eval_episodes=EVAL_EPISODES,
                                 deterministic=True, return_episode_rewards=True)
    wall = time.perf_counter() - start
    return steps / wall, float(np.mean(returns))


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
    args = parser.parse_args()
    default_threads = torch.get_num_threads()

    print(f"machine: {machine.describe()}, {torch.get_num_threads()} torch threads by default,"
          f" torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    runners = [("rlexp", bench_rlexp, {}), *((f"rlexp+{v}", bench_rlexp, {"variant": v}) for v in args.variants),
               ("sb3", bench_sb3, {"flush_denormal": args.sb3_flush_denormal})]
    rows = {name: [] for name, _, _ in runners}
    for seed in args.seeds:
        # rlexp first, then SB3, per seed: drift in machine speed hits both alike
        for name, fn, extra in runners:
            torch.set_num_threads(default_threads)
            sps, ret = fn(seed, args.steps, args.threads, args.device, **extra)
            rows[name].append((sps, ret))
            print(f"  {name:<13} seed {seed}: {sps:7.0f} agent steps/s, final eval return {ret:6.1f}", flush=True)
    print(f"\nCartPole-v1 DQN, {args.steps} agent steps, RL Zoo hyperparameters, {len(args.seeds)} seed(s):")
    print(f"{'':14}{'steps/s':>10}{'eval return':>14}")
    means = {}
    for name, values in rows.items():
        sps = float(np.mean([v[0] for v in values]))
        ret = float(np.mean([v[1] for v in values]))
        means[name] = sps
        print(f"{name:<14}{sps:>10.0f}{ret:>14.1f}")
    print(f"ratio rlexp/sb3 steps/s: {means['rlexp'] / means['sb3']:.2f}x (target >= 2x at an equal return)")
    for v in args.variants:
        print(f"effect of device.{v}: {means[f'rlexp+{v}'] / means['rlexp']:.2f}x rlexp's steps/s")


if __name__ == "__main__":
    main()
