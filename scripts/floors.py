"""The floor of a benchmark case, and where rlexp's time went: what every scripts/bench_*.py prints.

The floor of a sequential implementation is the env alone plus the learner alone, measured
in the same invocation as the libraries:

- env alone: rlexp's vector env for the case (the same copies, the same agent steps), random
  actions, nothing else;
- learner alone: the same number of updates of the same network (rlexp's builder), batch and
  optimizer (torch's fused Adam) on synthetic data, in a tight plain-torch loop with
  autograd: what a straightforward implementation's learner costs.

rlexp's time is printed as a percentage of the floor's speed (above 100%: rlexp's learner is
faster than the plain loop), with its own split from ``summary.json``'s ``time_split_s``
(``rlexp.timing``): acting, env, replay, update, other (logging, evaluations,
checkpoints), and setup (building the run, imports, the final evaluation).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

PHASES = ("acting", "env", "replay", "update", "other")


def env_alone_s(cfg, agent_steps: int) -> float:
    """Seconds for ``agent_steps`` random-action agent steps of the case's vector env."""
    from rlexp.envs.make import make_vector_env

    envs = make_vector_env(cfg.env, learning=True)
    envs.reset(seed=cfg.seed)
    envs.action_space.seed(cfg.seed)
    actions = [envs.action_space.sample() for _ in range(max(1, agent_steps // cfg.env.num_envs))]
    start = time.perf_counter()
    for a in actions:
        envs.step(a)
    elapsed = time.perf_counter() - start
    envs.close()
    return elapsed


def _synthetic_obs(space, n: int, device: torch.device) -> torch.Tensor:
    if space.dtype == np.uint8:
        return torch.randint(0, 256, (n, *space.shape), dtype=torch.uint8, device=device)
    return torch.randn(n, *space.shape, device=device)


def dqn_learner_alone_s(cfg, updates: int, device: str) -> float:
    """Seconds for ``updates`` DQN updates (a target forward per update, Huber loss, the clip,
    fused Adam, a target sync every ``algo.target_update_interval_steps`` updates)."""
    from rlexp.envs.make import make_vector_env
    from rlexp.networks import build_q_network

    dev = torch.device(device)
    envs = make_vector_env(cfg.env)
    space, n_actions = envs.single_observation_space, int(envs.single_action_space.n)
    online = build_q_network(cfg.network, space, envs.single_action_space).to(dev)
    target = build_q_network(cfg.network, space, envs.single_action_space).to(dev)
    envs.close()
    torch.set_flush_denormal(True)  # as rlexp does on CPU
    optimizer = torch.optim.Adam(online.parameters(), lr=cfg.algo.lr, fused=True)
    n, batches = cfg.algo.batch_size, min(updates, 64)  # a few distinct batches, cycled
    obs, next_obs = _synthetic_obs(space, batches * n, dev), _synthetic_obs(space, batches * n, dev)
    actions = torch.randint(0, n_actions, (batches, n, 1), device=dev)
    rewards, dones = torch.ones(batches, n, device=dev), torch.zeros(batches, n, device=dev)
    obs, next_obs = obs.view(batches, n, *space.shape), next_obs.view(batches, n, *space.shape)
    sync = max(1, cfg.algo.target_update_interval_steps)
    start = time.perf_counter()
    for k in range(updates):
        b = k % batches
        with torch.no_grad():
            y = rewards[b] + cfg.algo.gamma * (1 - dones[b]) * target(next_obs[b]).max(1).values
        q = online(obs[b]).gather(1, actions[b]).squeeze(1)
        loss = F.smooth_l1_loss(q, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(online.parameters(), 10.0)
        optimizer.step()
        if k % sync == 0:
            target.load_state_dict(online.state_dict())
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def ppo_learner_alone_s(cfg, updates: int, device: str) -> float:
    """Seconds for ``updates`` PPO minibatch updates (actor-critic forward, log-probs and
    entropy, clipped surrogate and value loss, the clip, fused Adam)."""
    from rlexp.envs.make import make_vector_env
    from rlexp.networks import build_actor_critic

    dev = torch.device(device)
    envs = make_vector_env(cfg.env)
    space, action_space = envs.single_observation_space, envs.single_action_space
    net = build_actor_critic(cfg.network, space, action_space).to(dev)
    envs.close()
    torch.set_flush_denormal(True)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.algo.lr, eps=cfg.algo.optimizer_eps, fused=True)
    a = cfg.algo
    n = a.rollout_steps * cfg.env.num_envs // a.num_minibatches
    obs = _synthetic_obs(space, n, dev)
    with torch.no_grad():
        out, _ = net(obs)
        actions, old_logprob = net.head.sample(out)
    adv, returns = torch.randn(n, device=dev), torch.randn(n, device=dev)
    start = time.perf_counter()
    for _ in range(updates):
        out, value = net(obs)
        logprob, entropy = net.head.log_prob_entropy(out, actions)
        ratio = (logprob - old_logprob).exp()
        norm_adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        policy_loss = torch.max(-norm_adv * ratio, -norm_adv * ratio.clamp(1 - a.clip_coef, 1 + a.clip_coef)).mean()
        loss = policy_loss - a.ent_coef * entropy.mean() + a.vf_coef * 0.5 * F.mse_loss(value, returns)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if a.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(net.parameters(), a.max_grad_norm)
        optimizer.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def describe_split(split: dict[str, float], wall_s: float) -> str:
    """rlexp's wall time by phase, e.g. 'acting 2.6 s, env 1.9 s, ..., setup 0.6 s'."""
    parts = [f"{p} {split.get(p, 0.0):.2f} s" for p in PHASES]
    parts.append(f"setup and final eval {max(0.0, wall_s - sum(split.values())):.2f} s")
    return ", ".join(parts)


def describe_floor(env_s: float, learner_s: float, updates: int, agent_steps: int, rlexp_sps: float) -> str:
    floor_sps = agent_steps / (env_s + learner_s)
    return (f"floor: env alone {env_s:.2f} s + learner alone {learner_s:.2f} s ({updates} updates) = {floor_sps:.0f} "
            f"agent steps/s; rlexp at {rlexp_sps / floor_sps:.0%} of the floor (target >= 70%)")
