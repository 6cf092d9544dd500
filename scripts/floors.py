"""The floor of a benchmark case, and where rlexp's time went: what every scripts/bench_*.py prints.

The floor of a sequential implementation is the env alone plus the learner alone, measured
in the same invocation as the libraries:

- env alone: rlexp's vector env for the case (the same copies, the same agent steps), random
  actions, nothing else;
- learner alone: the same number of updates by rlexp's own learner (its builder, its update
  code with the hand-written fast path wherever rlexp takes it, fused Adam), on a storage
  filled with random transitions, in a tight loop with no env, logging or evaluation: the
  fastest code we know for the learner, so rlexp's whole run is at most 100% of the floor.

rlexp's time is printed as a percentage of the floor's speed, with its own split from
``summary.json``'s ``time_split_s``
(``rlexp.timing``): acting, env, replay, update, other (logging, evaluations,
checkpoints), and setup (building the run, imports, the final evaluation).
"""

from __future__ import annotations

import time

import numpy as np
import torch

PHASES = ("acting", "env", "replay", "update", "other")


def env_alone_s(cfg, agent_steps: int) -> float:
    """Seconds for ``agent_steps`` random-action agent steps of the case's vector env."""
    from rlexp.envs.make import make_vector_env

    envs = make_vector_env(cfg.env, learning=True)
    envs.reset(seed=cfg.seed)
    envs.action_space.seed(cfg.seed)
    actions = [envs.action_space.sample() for _ in range(max(1, agent_steps // cfg.env.num_envs))]
    queued = iter(actions)
    elapsed = _fastest_chunks(lambda: envs.step(next(queued)), len(actions))
    envs.close()
    return elapsed


def _rlexp_algorithm(cfg, device: str):
    """rlexp's own algorithm for the case (its builder: the fast path wherever rlexp takes it)."""
    from rlexp.build import build_algorithm
    from rlexp.envs.make import make_vector_env

    envs = make_vector_env(cfg.env)
    torch.set_flush_denormal(True)  # as rlexp does on CPU
    algo = build_algorithm(cfg, envs, torch.device(device))
    return algo, envs


def _fill_with_random_steps(algo, envs, steps: int, seed: int) -> None:
    """``steps`` agent steps of random actions into the learner's storage (not timed)."""
    obs, _ = envs.reset(seed=seed)
    envs.action_space.seed(seed)
    for _ in range(max(1, steps // envs.num_envs)):
        actions = envs.action_space.sample()
        next_obs, rewards, terminated, truncated, _ = envs.step(actions)
        algo.buffer.add(*_as_stored(algo, obs, actions, rewards, next_obs, terminated))
        obs = next_obs


def _as_stored(algo, obs, actions, rewards, next_obs, terminated):
    if hasattr(algo, "from_env"):  # continuous control stores normalized, flattened actions
        n = len(actions)
        return (np.asarray(obs, np.float32).reshape(n, -1), algo.from_env(actions), rewards,
                np.asarray(next_obs, np.float32).reshape(n, -1), terminated)
    return obs, actions, rewards, next_obs, terminated


CHUNKS = 10  # a floor is timed in this many chunks, and its fastest chunk's pace counts (see _fastest_chunks)


def _fastest_chunks(fn, calls: int, device: str = "cpu") -> float:
    """Seconds for ``calls`` calls of ``fn`` at the pace of the fastest of ``CHUNKS`` consecutive
    chunks of them. A shared VM slows whole stretches of a run down (by a third, at times); a
    floor timed at its fastest stretch stays below what the same code does in rlexp's run,
    where it was measured whole."""
    sizes = [calls // CHUNKS + (1 if i < calls % CHUNKS else 0) for i in range(min(CHUNKS, calls))]
    best = float("inf")
    for size in sizes:
        start = time.perf_counter()
        for _ in range(size):
            fn()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - start) / size)
    return best * calls if sizes else 0.0


def _timed(fn, calls: int, device: str) -> tuple[float, float]:
    """(seconds for ``calls`` calls of ``fn`` at their fastest chunk's pace, their floating-point
    operations: one call counted by torch's FlopCounterMode, the matrix products and
    convolutions forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    per_call = _fastest_chunks(fn, calls - 1, device=device) / max(1, calls - 1)
    return per_call * calls, float(counter.get_total_flops()) * calls


def acting_flops(cfg, agent_steps: int, device: str) -> float:
    """Floating-point operations of the training actions for ``agent_steps`` steps (one batched
    forward pass per vector step), counted on rlexp's algorithm after learning starts."""
    from torch.utils.flop_counter import FlopCounterMode

    algo, envs = _rlexp_algorithm(cfg, device)
    obs, _ = envs.reset(seed=cfg.seed)
    envs.close()
    with FlopCounterMode(display=False) as counter:
        algo.act(obs, 10**9)  # a step long after learning starts: the policy acts
    return float(counter.get_total_flops()) * max(1, agent_steps // cfg.env.num_envs)


def matmul_rate(batch: int, width: int, device: str) -> float:
    """FLOP/s of float32 matrix products (batch x width) @ (width x width) here, at the current thread count."""
    dev = torch.device(device)
    a, b = torch.randn(batch, width, device=dev), torch.randn(width, width, device=dev)
    for _ in range(50):
        a @ b
    n, start = 1000, time.perf_counter()
    for _ in range(n):
        a @ b
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return 2 * batch * width * width * n / (time.perf_counter() - start)


def describe_bound(flops: float, rate: float, agent_steps: int, rlexp_sps: float, shape: str) -> str:
    """The arithmetic bound: the run's matrix arithmetic at the measured rate, as agent steps/s."""
    bound_sps = agent_steps / (flops / rate)
    return (f"arithmetic bound: {flops / 1e9:.1f} GFLOP of matrix products (learner and acting) at "
            f"{rate / 1e9:.0f} GFLOP/s measured for {shape} float32 products = {bound_sps:,.0f} agent steps/s; "
            f"rlexp at {rlexp_sps / bound_sps:.0%} of it")


def dqn_learner_alone_s(cfg, updates: int, device: str) -> tuple[float, float]:
    """(Seconds, FLOPs) of ``updates`` updates of rlexp's own DQN learner (its ``train``, fast path and
    fused Adam included) on a replay of random transitions, with the target syncs of the case."""
    algo, envs = _rlexp_algorithm(cfg, device)
    _fill_with_random_steps(algo, envs, min(cfg.algo.buffer_capacity_transitions, 5_000), cfg.seed)
    envs.close()
    a = cfg.algo
    per_call = a.updates_per_train
    syncs_every = max(1, a.target_update_interval_steps // a.train_interval_steps)
    calls = max(1, updates // per_call)
    counter = iter(range(calls))

    def step():
        algo.train(per_call)
        if next(counter) % syncs_every == 0:
            algo.sync_target()

    return _timed(step, calls, device)


def ppo_learner_alone_s(cfg, updates: int, device: str) -> tuple[float, float]:
    """(Seconds, FLOPs) of ``updates`` minibatch updates of rlexp's own PPO learner (its ``update``,
    fast path included) over a rollout of random steps."""
    from rlexp.algos.onpolicy import compute_gae

    algo, envs = _rlexp_algorithm(cfg, device)
    obs, _ = envs.reset(seed=cfg.seed)
    metrics = {}
    while not metrics:  # one rollout, through act/observe, until its first update (not timed)
        actions = algo.act(obs, 0)
        next_obs, rewards, terminated, truncated, _ = envs.step(actions)
        metrics = algo.observe(obs, actions, rewards, next_obs, terminated, truncated, 0)
        obs = next_obs
    envs.close()
    r = algo.rollout
    with torch.no_grad():
        next_value = algo.value(torch.as_tensor(obs, device=algo.device))
    advantages, returns = compute_gae(r.rewards, r.values, r.dones, next_value, cfg.algo.gamma, cfg.algo.gae_lambda)
    per_call = cfg.algo.update_epochs * cfg.algo.num_minibatches
    return _timed(lambda: algo.update(advantages, returns, 0), max(1, updates // per_call), device)


def off_policy_learner_alone_s(cfg, updates: int, device: str) -> tuple[float, float]:
    """(Seconds, FLOPs) of ``updates`` updates of rlexp's own SAC/TD3 learner (its ``train``) on a
    replay of random transitions."""
    algo, envs = _rlexp_algorithm(cfg, device)
    _fill_with_random_steps(algo, envs, 5_000, cfg.seed)
    envs.close()
    return _timed(lambda: algo.train(1), updates, device)


def describe_split(split: dict[str, float], wall_s: float) -> str:
    """rlexp's wall time by phase, e.g. 'acting 2.6 s, env 1.9 s, ..., setup 0.6 s'."""
    parts = [f"{p} {split.get(p, 0.0):.2f} s" for p in PHASES]
    parts.append(f"setup and final eval {max(0.0, wall_s - sum(split.values())):.2f} s")
    return ", ".join(parts)


def describe_floor(env_s: float, learner_s: float, updates: int, agent_steps: int, rlexp_sps: float) -> str:
    floor_sps = agent_steps / (env_s + learner_s)
    return (f"floor: env alone {env_s:.2f} s + learner alone {learner_s:.2f} s ({updates} updates) = {floor_sps:.0f} "
            f"agent steps/s; rlexp at {rlexp_sps / floor_sps:.0%} of the floor (at most 100%; target >= 70%)")


LEARNERS = {"dqn": dqn_learner_alone_s, "ppo": ppo_learner_alone_s, "off_policy": off_policy_learner_alone_s}


def measure(cfg, learner: str, updates: int, agent_steps: int, device: str) -> dict:
    """The floor and the arithmetic bound of a case, measured here: what ``describe`` prints."""
    learner_s, learner_flops = LEARNERS[learner](cfg, updates, device)
    a = cfg.algo
    batch = getattr(a, "batch_size", None) or a.rollout_steps * cfg.env.num_envs // a.num_minibatches
    width = cfg.network.cnn_hidden_size if cfg.network.name == "nature_cnn" else max(cfg.network.hidden_sizes)
    return {"env_s": env_alone_s(cfg, agent_steps), "learner_s": learner_s, "updates": updates,
            "flops": learner_flops + acting_flops(cfg, agent_steps, device), "rate": matmul_rate(batch, width, device),
            "shape": f"{batch}x{width}x{width}"}


def describe(record: dict, agent_steps: int, rlexp_sps: float) -> str:
    """Two lines: the floor (env alone + learner alone) and the arithmetic bound, each with rlexp's share."""
    return (describe_floor(record["env_s"], record["learner_s"], record["updates"], agent_steps, rlexp_sps) + "\n"
            + describe_bound(record["flops"], record["rate"], agent_steps, rlexp_sps, record["shape"]))
