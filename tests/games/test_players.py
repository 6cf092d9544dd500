"""Opponents, exact values of small games, matches and their intervals."""

import numpy as np
import pytest

from rlexp.errors import ConfigError
from rlexp.games.openspiel import load_game, replay_history
from rlexp.games.players import MatchResult, Solver, make_opponent, play_match, wilson

TTT = load_game("tic_tac_toe")


def test_tic_tac_toe_is_a_draw_and_its_forced_moves_are_known():
    solver = Solver(TTT)
    assert solver.value(TTT.new_initial_state()) == 0.0 and len(solver.values) == 4520  # reachable positions
    assert solver.optimal_actions(replay_history(TTT, [0, 3, 1, 4])) == [2]  # x wins at once
    assert solver.optimal_actions(replay_history(TTT, [0, 4, 1])) == [2]  # o must block
    assert solver.value(replay_history(TTT, [0, 4, 1])) == 0.0 and solver.value(replay_history(TTT, [0, 3, 1])) == -1.0


def test_perfect_play_draws_itself_and_never_loses_to_random():
    rng = np.random.default_rng(0)
    perfect = make_opponent("perfect", TTT, 0, 0)
    agent = lambda states: [perfect.step(s, rng) for s in states]  # noqa: E731
    assert set(play_match(TTT, agent, perfect, 20, rng).outcomes) == {0}
    against_random = play_match(TTT, agent, make_opponent("random", TTT, 0, 0), 40, rng)
    assert -1 not in against_random.outcomes and against_random.agent_first.count(True) == 20


def test_openspiel_mcts_plays_legal_moves_and_beats_random_at_connect_four():
    game = load_game("connect_four")
    rng = np.random.default_rng(0)
    mcts = make_opponent("mcts", game, 300, 0)
    random_agent = lambda states: [rng.choice(s.legal_actions()) for s in states]  # noqa: E731
    result = play_match(game, random_agent, mcts, 6, rng)
    assert result.outcomes.count(-1) >= 5 and all(len(m) >= 7 for m in result.moves)


def test_unknown_opponents_and_games_too_big_for_perfect_play_are_refused():
    with pytest.raises(ConfigError, match="opponent .minimax. does not exist; valid choices: random, mcts, perfect, untrained"):
        make_opponent("minimax", TTT, 0, 0)
    with pytest.raises(ConfigError, match="has more than 1,000 states; use --opponent mcts or random"):
        Solver(load_game("connect_four"), max_states=1000).value(load_game("connect_four").new_initial_state())


def test_wilson_interval_and_the_match_summary():
    low, high = wilson(0, 100)
    assert low == 0.0 and 0.03 < high < 0.04  # no losses in 100 games: below 3.7% at 95%
    low, high = wilson(50, 100)
    assert low == pytest.approx(0.404, abs=1e-3) and high == pytest.approx(0.596, abs=1e-3)
    result = MatchResult("random", outcomes=[1, 1, 0, -1], agent_first=[True, False, True, False])
    s = result.summary()
    assert (s["win_rate"], s["draw_rate"], s["loss_rate"], s["score"]) == (0.5, 0.25, 0.25, 0.625)
    assert (s["win_rate_first"], s["loss_rate_second"]) == (0.5, 0.5)
