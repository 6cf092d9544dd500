"""OpenSpiel games: which ones self-play applies to, and how states reach the network."""

import re

import numpy as np
import pytest

from rlexp.errors import ConfigError
from rlexp.games.openspiel import GameSpec, encode, legal_mask, load_game, replay_history


@pytest.mark.parametrize("spec", ["tic_tac_toe", "connect_four", "breakthrough(rows=6,columns=6)", "hex(board_size=5)"])
def test_two_player_zero_sum_perfect_information_games_load(spec):
    game = load_game(spec)
    assert game.num_players() == 2 and GameSpec.of(game).num_actions == game.num_distinct_actions()


@pytest.mark.parametrize(("spec", "message"), [
    ("kuhn_poker", "it is not perfect-information (it has imperfect information) and not deterministic"),
    ("backgammon", "it is not deterministic (it has explicit stochastic chance)"),
    ("goofspiel", "not sequential (its players move simultaneously)"),
    ("matching_pennies_3p", "not two-player (it has 3 players)"),
    ("breakthrough(rows=6,columns=", "is not a game string"),
    ("tictactoe", "OpenSpiel has no game 'tictactoe'; did you mean tic_tac_toe"),
    ("tic_tac_toe(size=4)", "cannot be loaded: Unknown parameter 'size'"),
])
def test_other_games_are_one_line_naming_what_they_lack(spec, message, capfd):
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        load_game(spec)
    assert "\n" not in str(err.value)
    assert "OpenSpiel exception" not in capfd.readouterr().err  # OpenSpiel's own print is silenced


def test_the_network_sees_the_board_and_who_is_to_move():
    game = load_game("tic_tac_toe")
    spec = GameSpec.of(game)
    assert spec.obs_shape == (4, 3, 3) and spec.num_actions == 9
    state = replay_history(game, [4])  # x in the centre, o to move
    obs = encode([game.new_initial_state(), state], spec)
    assert obs.shape == (2, 4, 3, 3) and obs.dtype == np.float32
    assert (obs[0, -1] == 0).all() and (obs[1, -1] == 1).all()  # the player plane
    assert obs[1, :3].sum() == 9 and obs[1, 2, 1, 1] == 1  # one-hot cells: the centre is x
    assert legal_mask(state, 9).tolist() == [True] * 4 + [False] + [True] * 4


def test_mirror_flips_boards_and_their_policies():
    from rlexp.errors import ConfigError
    from rlexp.games.openspiel import mirror

    c4 = GameSpec.of(load_game("connect_four"))
    state = replay_history(load_game("connect_four"), [0])  # a disc in the leftmost column
    obs, policy = mirror(encode([state], c4), np.eye(7, dtype=np.float32)[[1]], c4)
    assert obs[0, 0, 0, 6] == 1 and obs[0, 0, 0, 0] == 0  # now in the rightmost column (row 0 is the bottom)
    assert policy[0].tolist() == np.eye(7)[5].tolist()  # column 1 -> column 5
    ttt = GameSpec.of(load_game("tic_tac_toe"))
    _, cells = mirror(np.zeros((1, 4, 3, 3), np.float32), np.eye(9, dtype=np.float32)[[0]], ttt)
    assert cells[0].tolist() == np.eye(9)[2].tolist()  # the top-left cell -> the top-right one
    breakthrough = GameSpec.of(load_game("breakthrough(rows=6,columns=6)"))
    with pytest.raises(ConfigError, match="needs actions that are the board's columns or cells"):
        mirror(np.zeros((1, *breakthrough.obs_shape), np.float32), np.zeros((1, 432), np.float32), breakthrough)
