"""Q-learning, SARSA and value iteration: the update rules by hand, and planning against BFS."""

from collections import deque

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlexp.algos.q_learning import QLearning
from rlexp.algos.sarsa import Sarsa
from rlexp.algos.tabular import model_arrays, value_iteration
from rlexp.algos.value_iteration import ValueIteration
from rlexp.config import ConfigError, NetworkConfig, QLearningConfig, SarsaConfig, ValueIterationConfig
from rlexp.envs.maze import MOVES, MazeEnv

S, A = gym.spaces.Discrete(5), gym.spaces.Discrete(2)
CPU = torch.device("cpu")
MAZE = """
#######
#S  # #
# #   #
#   #G#
#######
"""


def make(cls, cfg, num_envs=1, env_model=None):
    return cls(cfg, S, A, NetworkConfig(), CPU, 0, num_envs, env_model=env_model)


def _step(algo, s, a, r, s2, terminated=False, truncated=False, step=0):
    return algo.observe(np.array([s]), np.array([a]), np.array([r], np.float32), np.array([s2]),
                        np.array([terminated]), np.array([truncated]), step)


def test_q_learning_update_by_hand():
    algo = make(QLearning, QLearningConfig(alpha=0.5, gamma=0.9))
    algo.q[3] = [1.0, 4.0]
    _step(algo, 0, 1, -1.0, 3)
    assert algo.q[0, 1] == pytest.approx(0.5 * (-1.0 + 0.9 * 4.0))  # toward r + gamma max_a' Q(s', a')
    _step(algo, 1, 0, 2.0, 3, terminated=True)
    assert algo.q[1, 0] == pytest.approx(0.5 * 2.0)  # terminal: no bootstrap
    _step(algo, 2, 0, 2.0, 3, truncated=True)
    assert algo.q[2, 0] == pytest.approx(0.5 * (2.0 + 0.9 * 4.0))  # truncation still bootstraps
    assert algo.visits[0, 1] == 1 and algo.transitions[0, 1, 3] == 1 and algo.ended[1, 0, 3] == 1


def test_sarsa_bootstraps_from_the_action_it_then_takes():
    algo = make(Sarsa, SarsaConfig(alpha=1.0, gamma=1.0, epsilon_start=1.0, epsilon_end=1.0))
    algo.q[3] = [10.0, -10.0]
    taken = []
    for _ in range(20):
        a = int(algo.act(np.array([0]), 0)[0])
        _step(algo, 0, a, 0.0, 3)
        next_action = int(algo.act(np.array([3]), 1)[0])  # the A' the update used
        taken.append((algo.q[0, a], algo.q[3, next_action]))
        algo._next_actions = None
    assert all(q == pytest.approx(q_next) for q, q_next in taken)  # Q(s, a) = r + Q(s', A')
    assert {q for _, q in taken} == {10.0, -10.0}  # both A' happened: on-policy, not max


def test_alpha_schedules_and_epsilon_decay():
    algo = make(QLearning, QLearningConfig(alpha=0.5, alpha_end=0.1, alpha_decay_steps=100,
                                           epsilon_start=1.0, epsilon_end=0.1, epsilon_decay_steps=10))
    assert algo.alpha(50) == pytest.approx(0.3) and algo.alpha(500) == pytest.approx(0.1)
    assert algo.epsilon(5) == pytest.approx(0.55) and algo.epsilon(50) == pytest.approx(0.1)
    visits = make(QLearning, QLearningConfig(alpha=1.0, alpha_end=0.01, alpha_schedule="visits"))
    for k in range(4):
        _step(visits, 0, 0, 1.0, 1, terminated=True)
    assert visits.q[0, 0] == pytest.approx(1.0)  # alpha 1/N: the running mean of the targets
    assert visits.alpha(0, np.array([0]), np.array([0]))[0] == pytest.approx(0.25)


def test_greedy_ties_are_broken_at_random_but_evaluation_keeps_its_own_rng():
    algo = make(QLearning, QLearningConfig(epsilon_start=0.0, epsilon_end=0.0, epsilon_decay_steps=0))
    picks = {int(algo.act(np.array([0]), 0)[0]) for _ in range(50)}
    assert picks == {0, 1}
    algo.q[0] = [0.0, 1.0]
    assert set(algo.act(np.zeros(20, dtype=np.int64), 0)) == {1}
    state = algo.rng.bit_generator.state
    algo.predict(np.array([1, 2]))
    assert algo.rng.bit_generator.state == state


def _bfs_steps(env: MazeEnv) -> dict[int, int]:
    dist = {env.goal: 0}
    queue = deque([env.goal])
    while queue:
        s = queue.popleft()
        r, c = env.cells[s]
        for dr, dc in MOVES:
            n = env.index.get((r + dr, c + dc))
            if n is not None and n not in dist:
                dist[n] = dist[s] + 1
                queue.append(n)
    return dist


def test_value_iteration_values_are_minus_the_shortest_path_lengths():
    env = MazeEnv(MAZE)
    algo = ValueIteration(ValueIterationConfig(gamma=1.0), env.observation_space, env.action_space, NetworkConfig(),
                          CPU, 0, 1, env_model=env.P)
    values = algo.q.max(axis=1)
    dist = _bfs_steps(env)
    assert all(values[s] == pytest.approx(-dist[s]) for s in range(len(env.cells)))
    assert algo.plans == 1 and algo.sweeps <= len(env.cells) + 2


def test_value_iteration_needs_a_model_or_learns_one():
    with pytest.raises(ConfigError, match="algo.model=known needs an env that exposes its transition model"):
        make(ValueIteration, ValueIterationConfig())
    env = MazeEnv(MAZE)
    cfg = ValueIterationConfig(gamma=1.0, model="learned", plan_interval_steps=50, epsilon_start=0.3,
                               epsilon_end=0.3)
    algo = ValueIteration(cfg, env.observation_space, env.action_space, NetworkConfig(), CPU, 0, 1)
    obs, _ = env.reset(seed=0)
    for step in range(3000):
        action = algo.act(np.array([obs]), step)
        nxt, r, term, trunc, _ = env.step(int(action[0]))
        algo.observe(np.array([obs]), action, np.array([r]), np.array([nxt]), np.array([term]), np.array([trunc]), step)
        obs = env.reset()[0] if term else nxt
    # the learned model of a deterministic maze is exact where tried: the plan is optimal
    rewards, continuation = model_arrays(env.P, len(env.cells), 4)
    optimal, _ = value_iteration(rewards, continuation, 1.0, 1e-9, 10_000)
    assert algo.plans == 60 and algo.q.max(axis=1) == pytest.approx(optimal.max(axis=1))


def test_state_round_trip_through_torch_save(tmp_path):
    algo = make(QLearning, QLearningConfig())
    for k in range(5):
        _step(algo, k % 5, k % 2, 1.0, (k + 1) % 5, step=k)
    torch.save({"algo": algo.state_dict()}, tmp_path / "ckpt.pt")
    again = make(QLearning, QLearningConfig())
    again.load_state_dict(torch.load(tmp_path / "ckpt.pt", weights_only=True)["algo"])
    assert np.array_equal(again.q, algo.q) and np.array_equal(again.transitions, algo.transitions)
    assert again.act(np.arange(5), 10).tolist() == algo.act(np.arange(5), 10).tolist()


def test_refuses_non_discrete_spaces():
    with pytest.raises(ConfigError, match="algo=q_learning needs discrete states"):
        QLearning(QLearningConfig(), gym.spaces.Box(-1, 1, (3,)), A, NetworkConfig(), CPU, 0, 1)
    with pytest.raises(ConfigError, match="algo=sarsa needs discrete actions"):
        Sarsa(SarsaConfig(), S, gym.spaces.Box(-1, 1, (1,)), NetworkConfig(), CPU, 0, 1)
