"""Batched tree search: it finds forced moves, batching changes nothing, Gumbel's halving."""

import numpy as np
import pytest

from rlexp.games.openspiel import GameSpec, load_game, replay_history
from rlexp.games.search import BatchedSearch, SearchConfig, considered_visits

GAME = load_game("tic_tac_toe")
SPEC = GameSpec.of(GAME)


def uniform(obs):
    """No knowledge: flat priors and a value of 0 everywhere (the search alone decides)."""
    return np.zeros((len(obs), SPEC.num_actions), np.float32), np.zeros(len(obs), np.float32)


WIN = [0, 3, 1, 4]  # x holds 0 and 1: x wins at 2
BLOCK = [0, 4, 1]  # o must take 2 (the only move that does not lose)


@pytest.mark.parametrize("root", ["puct", "gumbel"])
def test_it_takes_a_win_and_blocks_a_loss(root):
    search = BatchedSearch(SPEC, uniform, SearchConfig(simulations=300, root=root))
    result = search.run([replay_history(GAME, WIN), replay_history(GAME, BLOCK)])
    assert result.action.tolist() == [2, 2]
    assert result.policy[0, 2] == result.policy[0].max() and result.q[0, 2] == pytest.approx(1.0)


def test_root_statistics_add_up():
    search = BatchedSearch(SPEC, uniform, SearchConfig(simulations=50))
    result = search.run([GAME.new_initial_state(), replay_history(GAME, [4])], np.random.default_rng(0))
    assert result.visits.sum(axis=1).tolist() == [50, 50]
    assert result.visits[1, 4] == 0  # an occupied cell is never searched
    assert np.allclose(result.policy.sum(axis=1), 1) and np.allclose(result.prior.sum(axis=1), 1)


@pytest.mark.parametrize("root", ["puct", "gumbel"])
def test_searching_games_together_equals_searching_each_alone(root):
    rng_values = np.random.default_rng(1)
    table = {}

    def evaluate(obs):  # a fixed random function of the position
        out = []
        for o in obs:
            key = o.tobytes()
            if key not in table:
                table[key] = (rng_values.normal(size=SPEC.num_actions), rng_values.uniform(-1, 1))
            out.append(table[key])
        return np.array([o[0] for o in out], np.float32), np.array([o[1] for o in out], np.float32)

    states = [replay_history(GAME, h) for h in ([], [4], [0, 8], [4, 0, 8])]
    search = BatchedSearch(SPEC, evaluate, SearchConfig(simulations=40, root=root))
    together = search.run(states)
    for i, state in enumerate(states):
        alone = search.run([state])
        assert np.array_equal(alone.visits[0], together.visits[i]) and alone.action[0] == together.action[i]


def test_dirichlet_noise_only_with_an_rng():
    search = BatchedSearch(SPEC, uniform, SearchConfig(simulations=20))
    plain = search.run([GAME.new_initial_state()])
    noisy = search.run([GAME.new_initial_state()], np.random.default_rng(0))
    assert np.allclose(plain.prior, 1 / 9) and not np.array_equal(plain.visits, noisy.visits)


def test_sequential_halving_schedule():
    # 4 considered actions, 16 simulations: 2 rounds of 4 (log2(4) = 2 phases), then 2 actions
    # share the rest
    assert considered_visits(4, 16).tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert considered_visits(1, 5).tolist() == [0, 1, 2, 3, 4]
    assert len(considered_visits(16, 200)) == 200


def test_gumbel_improves_on_the_prior_with_few_simulations():
    def misled(obs):  # a prior that dislikes the winning move
        logits = np.zeros((len(obs), 9), np.float32)
        logits[:, 2] = -2.0
        return logits, np.zeros(len(obs), np.float32)

    search = BatchedSearch(SPEC, misled, SearchConfig(simulations=8, root="gumbel", gumbel_considered=9))
    result = search.run([replay_history(GAME, WIN)], np.random.default_rng(0))
    assert result.policy[0, 2] > result.prior[0, 2] and result.policy[0, 2] == result.policy[0].max()
