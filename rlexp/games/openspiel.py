"""Board games from OpenSpiel: loading a game string, checking that tree search and
self-play apply to it, and encoding states for the network.

OpenSpiel's C++ game states (``clone``, ``legal_actions``, ``apply_action``, ``returns``)
are the rules; rlexp writes none of its own. A game qualifies when it is two-player,
zero-sum, perfect-information, deterministic, sequential, rewarded at the end, and has
an observation tensor; anything else is one error line naming what it lacks.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from rlexp.errors import ConfigError, first_line

GAME_STRING = re.compile(r"^[a-z_][a-z0-9_]*(\(.*\))?$")


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """OpenSpiel's C++ prints its errors to file descriptor 2 before raising them; our one
    line says it already."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_game(spec: str):
    """The OpenSpiel game named by ``spec`` (``tic_tac_toe``, ``breakthrough(rows=6,columns=6)``),
    checked to be a game self-play tree search applies to.

    Raises:
        ConfigError: a malformed string, an unknown game or parameter, or a game outside the
            class (one line naming what it lacks).
    """
    import pyspiel

    spec = spec.strip()
    if not GAME_STRING.match(spec.replace(" ", "")):
        raise ConfigError(f"env.game={spec!r} is not a game string; write name or name(param=value,...), "
                          "e.g. breakthrough(rows=6,columns=6)")
    name = spec.split("(", 1)[0]
    names = pyspiel.registered_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "pyspiel.registered_names() lists them"
        raise ConfigError(f"env.game={spec!r}: OpenSpiel has no game {name!r}; {hint}")
    try:
        with _quiet_stderr():
            game = pyspiel.load_game(spec.replace(" ", ""))
    except pyspiel.SpielError as err:
        raise ConfigError(f"env.game={spec!r} cannot be loaded: {first_line(err).removeprefix('OpenSpiel exception: ')}") \
            from None
    missing = unsupported(game)
    if missing:
        raise ConfigError(f"env.game={spec!r} cannot be learned by self-play tree search: it is not "
                          f"{' and not '.join(missing)}; choose a two-player zero-sum perfect-information "
                          "deterministic game, e.g. tic_tac_toe, connect_four, breakthrough, hex, othello")
    # OpenSpiel accepts parameters whose board cannot exist (breakthrough(rows=-2)); the network
    # built on its observation would fail later with a negative dimension
    shape, actions = list(game.observation_tensor_shape()), game.num_distinct_actions()
    if not shape or min(shape) < 1 or actions < 1:
        raise ConfigError(f"env.game={spec!r} has no board: OpenSpiel gives it observations of shape {shape} and "
                          f"{actions} actions; a size parameter (rows, columns, board_size...) is out of range")
    try:
        with _quiet_stderr():
            game.new_initial_state()
    except pyspiel.SpielError as err:
        raise ConfigError(f"env.game={spec!r} cannot start a game: "
                          f"{first_line(err).removeprefix('OpenSpiel exception: ')}") from None
    return game


def check_config(cfg) -> None:
    """Refuse an ``env=openspiel`` config (:class:`~rlexp.config.GameEnvConfig`) whose game
    string :func:`load_game` refuses (one line)."""
    load_game(cfg.game)


def unsupported(game) -> list[str]:
    """What ``game`` lacks of the class AlphaZero handles ([] when nothing)."""
    import pyspiel

    t = game.get_type()
    checks = [
        (game.num_players() == 2, f"two-player (it has {game.num_players()} players)"),
        (t.utility == pyspiel.GameType.Utility.ZERO_SUM, f"zero-sum (its utility is {t.utility.name.lower()})"),
        (t.information == pyspiel.GameType.Information.PERFECT_INFORMATION,
         f"perfect-information (it has {t.information.name.lower().replace('_', ' ')})"),
        (t.chance_mode == pyspiel.GameType.ChanceMode.DETERMINISTIC,
         f"deterministic (it has {t.chance_mode.name.lower().replace('_', ' ')} chance)"),
        (t.dynamics == pyspiel.GameType.Dynamics.SEQUENTIAL, "sequential (its players move simultaneously)"),
        (t.reward_model == pyspiel.GameType.RewardModel.TERMINAL, "rewarded only at the end"),
        (t.provides_observation_tensor, "given an observation tensor"),
    ]
    return [what for ok, what in checks if not ok]


@dataclass(frozen=True)
class GameSpec:
    """What the network and the search need to know of a game."""

    name: str  # the game string, as OpenSpiel prints it
    obs_shape: tuple[int, ...]  # the encoded observation: OpenSpiel's tensor plus one plane for the player to move
    num_actions: int  # distinct actions (the policy head's outputs)
    max_game_length: int  # moves at most

    @classmethod
    def of(cls, game) -> "GameSpec":
        shape = tuple(game.observation_tensor_shape())
        encoded = (shape[0] + 1, *shape[1:]) if len(shape) == 3 else (int(np.prod(shape)) + 1,)
        return cls(str(game), encoded, game.num_distinct_actions(), game.max_game_length())


def encode(states: list, spec: GameSpec, out: np.ndarray | None = None) -> np.ndarray:
    """The network's input for each state: OpenSpiel's observation tensor for the player to
    move, plus a plane (or a feature) saying who that is (0 or 1), float32."""
    batch = out if out is not None else np.empty((len(states), *spec.obs_shape), dtype=np.float32)
    for i, state in enumerate(states):
        player = state.current_player()
        tensor = np.asarray(state.observation_tensor(player), dtype=np.float32)
        if len(spec.obs_shape) == 3:
            batch[i, :-1] = tensor.reshape(spec.obs_shape[0] - 1, *spec.obs_shape[1:])
            batch[i, -1] = player
        else:
            batch[i, :-1] = tensor
            batch[i, -1] = player
    return batch


def mirror(obs: np.ndarray, policy: np.ndarray, spec: GameSpec) -> tuple[np.ndarray, np.ndarray]:
    """Positions and their policies flipped left-right, for games whose rules are symmetric so
    and whose actions are the board's columns (connect four) or its cells (tic-tac-toe, go).

    Raises:
        ConfigError: the game's actions do not map onto its board.
    """
    if len(spec.obs_shape) != 3:
        raise ConfigError(f"algo.augment=mirror needs a board-shaped observation; {spec.name}'s is {spec.obs_shape}")
    _, h, w = spec.obs_shape
    if spec.num_actions == w:
        flipped_policy = policy[:, ::-1]
    elif spec.num_actions in (h * w, h * w + 1):
        cells = policy[:, : h * w].reshape(-1, h, w)[:, :, ::-1].reshape(-1, h * w)
        flipped_policy = np.concatenate([cells, policy[:, h * w:]], axis=1)
    else:
        raise ConfigError(f"algo.augment=mirror needs actions that are the board's columns or cells; {spec.name} has "
                          f"{spec.num_actions} actions on a {h}x{w} board")
    return np.ascontiguousarray(obs[..., ::-1]), np.ascontiguousarray(flipped_policy)


def legal_mask(state, num_actions: int) -> np.ndarray:
    """Boolean mask of the legal actions of ``state``."""
    mask = np.zeros(num_actions, dtype=bool)
    mask[state.legal_actions()] = True
    return mask


def replay_history(game, actions: list[int]):
    """The state after ``actions`` from the initial state (how games in progress are saved)."""
    state = game.new_initial_state()
    for action in actions:
        state.apply_action(int(action))
    return state
