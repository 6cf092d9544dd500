"""The opponents an agent is measured against, exact game values for small games, and matches.

Opponents: ``random`` (uniform over legal moves), ``mcts`` (OpenSpiel's C++ ``MCTSBot``
with random-rollout evaluation, the reference search of the AlphaZero papers' baselines),
``perfect`` (exact minimax, for games small enough to solve: tic-tac-toe) and ``untrained``
(the agent's own search driven by a freshly initialised network: what training added). A match
plays every game concurrently, half with the agent moving first, so the agent's searches
are batched; results are win/draw/loss from the agent's side with Wilson 95% intervals.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from rlexp.errors import ConfigError

OPPONENTS = ("random", "mcts", "perfect", "untrained")
PERFECT_MAX_STATES = 200_000  # "perfect" solves the game first; a bigger game is refused


class Solver:
    """Exact minimax values of a small game, memoized on the position (the state's text and
    the player to move: a perfect-information state's text shows the whole position)."""

    def __init__(self, game, max_states: int = PERFECT_MAX_STATES):
        self.game, self.max_states = game, max_states
        self.values: dict[tuple[str, int], float] = {}

    def value(self, state) -> float:
        """The value of a non-terminal state for the player to move (+1 win, 0 draw, -1 loss)."""
        key = (str(state), state.current_player())
        if key in self.values:
            return self.values[key]
        result = max(self.child_values(state).values())
        if len(self.values) >= self.max_states:
            raise ConfigError(f"opponent perfect solves the game exactly, and {self.game} has more than "
                              f"{self.max_states:,} states; use --opponent mcts or random")
        self.values[key] = result
        return result

    def child_values(self, state) -> dict[int, float]:
        """Each legal action's value for the player to move at ``state``."""
        player, out = state.current_player(), {}
        for action in state.legal_actions():
            child = state.child(action)
            if child.is_terminal():
                out[action] = float(child.returns()[player])
            else:
                v = self.value(child)
                out[action] = v if child.current_player() == player else -v
        return out

    def optimal_actions(self, state) -> list[int]:
        values = self.child_values(state)
        best = max(values.values())
        return [a for a, v in values.items() if v >= best - 1e-9]


class Opponent(ABC):
    """Picks moves for several games at once; ``rng``-driven where it is random."""

    name = "opponent"

    @abstractmethod
    def steps(self, states: list, rng: np.random.Generator) -> list[int]:
        """Moves for several games at once (one per state, in order)."""


class OneAtATime(Opponent):
    """An opponent that decides for one state at a time."""

    @abstractmethod
    def step(self, state, rng: np.random.Generator) -> int:
        """The move in ``state``."""

    def steps(self, states: list, rng: np.random.Generator) -> list[int]:
        return [self.step(state, rng) for state in states]


class SearchOpponent(Opponent):
    """A batched search as an opponent (``untrained``: the agent's search with a new network)."""

    name = "untrained"

    def __init__(self, moves: "Agent"):
        self.moves = moves

    def steps(self, states, rng):
        return [int(a) for a in self.moves(states)]


class RandomOpponent(OneAtATime):
    name = "random"

    def step(self, state, rng):
        return int(rng.choice(state.legal_actions()))


class MCTSOpponent(OneAtATime):
    """OpenSpiel's C++ MCTSBot with random rollouts (UCT constant 2, as OpenSpiel's examples)."""

    name = "mcts"

    def __init__(self, game, simulations: int, seed: int):
        import pyspiel

        self.game, self.simulations, self.seed = game, simulations, seed

        def make(seed: int):
            evaluator = pyspiel.RandomRolloutEvaluator(1, seed)
            return pyspiel.MCTSBot(game, evaluator, 2.0, simulations, 1000, False, seed, False)

        self._make = make

    def step(self, state, rng):
        return int(self._make(int(rng.integers(2**31 - 1))).step(state))


class PerfectOpponent(OneAtATime):
    """Minimax: a uniformly random one of the optimal moves."""

    name = "perfect"

    def __init__(self, solver: Solver):
        self.solver = solver

    def step(self, state, rng):
        return int(rng.choice(self.solver.optimal_actions(state)))


def make_opponent(name: str, game, mcts_simulations: int, seed: int, untrained: "Agent | None" = None) -> Opponent:
    """``untrained``: the moves of the agent's search with an untrained network (for that opponent).

    Raises ConfigError for an unknown name (the valid ones listed) or a game too big for perfect play."""
    if name == "untrained":
        if untrained is None:
            raise ConfigError("the untrained opponent is the agent's own search with a new network; it needs the agent")
        return SearchOpponent(untrained)
    if name == "random":
        return RandomOpponent()
    if name == "mcts":
        if mcts_simulations < 1:
            raise ConfigError(f"the mcts opponent needs >= 1 simulations, got {mcts_simulations}")
        return MCTSOpponent(game, mcts_simulations, seed)
    if name == "perfect":
        solver = Solver(game)
        solver.value(game.new_initial_state())  # solve it now: a game too big is refused before any play
        return PerfectOpponent(solver)
    raise ConfigError(f"opponent {name!r} does not exist; valid choices: {', '.join(OPPONENTS)}")


# ---------------------------------------------------------------------- matches


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval of a rate (good near 0 and 1, where the normal one is not)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class MatchResult:
    """Outcomes from the agent's side (+1 win, 0 draw, -1 loss) and the games' moves."""

    opponent: str
    outcomes: list[int] = field(default_factory=list)
    agent_first: list[bool] = field(default_factory=list)
    moves: list[list[int]] = field(default_factory=list)

    def rate(self, outcome: int, first: bool | None = None) -> tuple[float, int]:
        chosen = [o for o, f in zip(self.outcomes, self.agent_first) if first is None or f == first]
        return (sum(o == outcome for o in chosen) / len(chosen) if chosen else float("nan")), len(chosen)

    def summary(self) -> dict:
        """Rates with Wilson 95% intervals, overall and by the agent's colour."""
        n = len(self.outcomes)
        out = {"opponent": self.opponent, "games": n}
        for key, outcome in (("win", 1), ("draw", 0), ("loss", -1)):
            rate, _ = self.rate(outcome)
            low, high = wilson(rate * n, n)
            out[f"{key}_rate"], out[f"{key}_ci95"] = rate, [low, high]
            for first, side in ((True, "first"), (False, "second")):
                out[f"{key}_rate_{side}"] = self.rate(outcome, first)[0]
        out["score"] = out["win_rate"] + 0.5 * out["draw_rate"]
        return out


# agent(states) -> actions: the agent's moves for a batch of states (one batched search)
Agent = Callable[[list], np.ndarray]


def play_match(game, agent: Agent, opponent: Opponent, games: int, rng: np.random.Generator) -> MatchResult:
    """``games`` games against ``opponent``, the agent first in the even-numbered ones; the
    agent's moves for every game waiting on it come from one call."""
    states = [game.new_initial_state() for _ in range(games)]
    agent_player = [0 if i % 2 == 0 else 1 for i in range(games)]
    live = list(range(games))
    while live:
        mine = [i for i in live if states[i].current_player() == agent_player[i]]
        if mine:
            for i, action in zip(mine, agent([states[i] for i in mine])):
                states[i].apply_action(int(action))
        theirs = [i for i in live if not states[i].is_terminal() and states[i].current_player() != agent_player[i]]
        if theirs:
            for i, action in zip(theirs, opponent.steps([states[i] for i in theirs], rng)):
                states[i].apply_action(int(action))
        live = [i for i in live if not states[i].is_terminal()]
    result = MatchResult(opponent.name)
    for i, state in enumerate(states):
        result.outcomes.append(int(np.sign(state.returns()[agent_player[i]])))
        result.agent_first.append(agent_player[i] == 0)
        result.moves.append([int(a) for a in state.history()])
    return result
