"""Batched tree search: many games searched at once, their leaves evaluated in one network call
per simulation.

Each of B games has its own tree (no tree is shared or reused between moves). A simulation
descends every tree in lockstep with array operations (the trees live in flat arrays: node
``b * M + n`` of game b), adds one leaf per game, evaluates all new leaves in a single
batch, and backs the values up. The search is exact whatever B: game b's tree is the same
as if it were searched alone, because nothing crosses between games.

Two root searches (the rest of the tree is PUCT):

- ``puct`` (Silver et al. 2017/2018): ``Q + c_puct * P * sqrt(N_parent) / (1 + N)``, with
  Dirichlet noise on the root priors during self-play; the target is the visit distribution.
- ``gumbel`` (Danihelka et al. 2022, as in DeepMind's mctx): Gumbel-top-k sampling of the
  considered root actions and sequential halving over the simulation budget; the target is
  the improved policy ``softmax(logits + sigma(completed Q))``, which improves on the prior
  even with a handful of simulations.

Values are from the point of view of the player to move at a node; a terminal state's value
comes from the game's returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from rlexp.games.openspiel import GameSpec, encode, legal_mask

# (observations (n, *obs_shape)) -> (logits (n, A), values (n,)), values for the player to move
Evaluate = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class SearchConfig:
    """The search's settings (``AlphaZeroConfig`` has each one's source)."""

    simulations: int
    c_puct: float = 1.25
    root: str = "puct"  # puct or gumbel
    dirichlet_alpha: float = 0.3
    dirichlet_fraction: float = 0.25
    gumbel_considered: int = 16  # root actions sampled by Gumbel-top-k
    gumbel_c_visit: float = 50.0  # sigma(q) = (c_visit + max N) * c_scale * q
    gumbel_c_scale: float = 0.1


@dataclass
class SearchResult:
    """The roots' statistics after a search, one row per game."""

    visits: np.ndarray  # (B, A) root visit counts
    policy: np.ndarray  # (B, A) the training target (visit distribution, or Gumbel's improved policy)
    action: np.ndarray  # (B,) the search's own choice (most visited; Gumbel: the sequential-halving winner)
    prior: np.ndarray  # (B, A) the network's policy at the root
    value: np.ndarray  # (B,) the network's value at the root (player to move)
    q: np.ndarray  # (B, A) mean value of each root action (0 where unvisited), player to move
    simulations: int  # simulations run (per game)
    obs: np.ndarray  # (B, *obs_shape) the roots as the network saw them (self-play keeps them as samples)


def considered_visits(num_considered: int, simulations: int) -> np.ndarray:
    """Sequential halving's schedule (mctx ``get_sequence_of_considered_visits``): the visit
    count a root action must have to be chosen at each simulation."""
    if num_considered <= 1:
        return np.arange(simulations)
    log2 = math.ceil(math.log2(num_considered))
    sequence: list[int] = []
    visits = [0] * num_considered
    while len(sequence) < simulations:
        extra = max(1, int(simulations / (log2 * num_considered)))
        for _ in range(extra):
            sequence.extend(visits[:num_considered])
            for i in range(num_considered):
                visits[i] += 1
        num_considered = max(2, num_considered // 2)
    return np.asarray(sequence[:simulations])


class BatchedSearch:
    """Searches B game states at once with one network; see the module docstring."""

    def __init__(self, spec: GameSpec, evaluate: Evaluate, cfg: SearchConfig):
        self.spec, self.evaluate, self.cfg = spec, evaluate, cfg
        self._halving: dict[tuple[int, int], np.ndarray] = {}  # (considered, simulations) -> schedule

    def run(self, states: list, rng: np.random.Generator | None = None, simulations: int | None = None) -> SearchResult:
        """Search each state of ``states`` (none terminal). ``rng``: self-play exploration
        (Dirichlet noise or Gumbel draws); None searches without it (evaluation, play)."""
        tree = _Trees(len(states), (simulations or self.cfg.simulations) + 1, self.spec)
        logits, values, obs = self._expand_roots(tree, states, rng)
        gumbel = None
        if self.cfg.root == "gumbel":
            gumbel = rng.gumbel(size=logits.shape) if rng is not None else np.zeros_like(logits)
        for sim in range(tree.capacity - 1):
            self._simulate(tree, sim, logits, values, gumbel)
        return self._result(tree, logits, values, gumbel, obs)

    # ------------------------------------------------------------------ one simulation

    def _simulate(self, tree: "_Trees", sim: int, logits, values, gumbel) -> None:
        """Descend every tree to a new leaf or a terminal node, evaluate the new leaves in one
        batch, back the values up."""
        B, M = tree.games, tree.capacity
        path_nodes = np.zeros((tree.max_depth, B), dtype=np.int64)
        path_actions = np.zeros((tree.max_depth, B), dtype=np.int64)
        length = np.zeros(B, dtype=np.int64)
        node = np.arange(B) * M  # every root
        going = np.arange(B)
        depth = 0
        leaf_parent, leaf_action, leaf_game = [], [], []
        value0 = np.zeros(B)  # the simulation's value for player 0, per game
        while going.size:
            here = node[going]
            if depth == 0 and gumbel is not None:
                actions = self._gumbel_select(tree, going, sim, logits, values, gumbel)
            else:
                actions = self._puct_select(tree, here)
            path_nodes[depth, going], path_actions[depth, going] = here, actions
            length[going] = depth + 1
            nxt = tree.child[here, actions]
            new = nxt < 0
            done = new.copy()
            old = ~new
            if old.any():
                ended = tree.terminal[nxt[old]]
                value0[going[old][ended]] = tree.terminal_value0[nxt[old][ended]]
                done[np.flatnonzero(old)[ended]] = True
            for g, parent, a in zip(going[new], here[new], actions[new]):
                leaf_game.append(g), leaf_parent.append(parent), leaf_action.append(a)
            node[going[~done]] = nxt[~done]
            going = going[~done]
            depth += 1
        self._add_leaves(tree, leaf_game, leaf_parent, leaf_action, value0)
        self._backup(tree, path_nodes, path_actions, length, value0)

    def _puct_select(self, tree: "_Trees", nodes: np.ndarray) -> np.ndarray:
        """argmax of Q + c_puct * P * sqrt(N_parent) / (1 + N) over the legal actions."""
        n = tree.visits[nodes]
        total = n.sum(axis=1, keepdims=True) + 1  # the node's own evaluation counts as a visit
        q = np.where(n > 0, tree.value_sum[nodes] / np.maximum(n, 1), 0.0)
        score = q + self.cfg.c_puct * tree.prior[nodes] * np.sqrt(total) / (1 + n)
        score[~tree.legal[nodes]] = -np.inf
        return score.argmax(axis=1)

    def _gumbel_select(self, tree: "_Trees", games: np.ndarray, sim: int, logits, values, gumbel) -> np.ndarray:
        """Sequential halving at the root: among the actions with the visit count the schedule
        asks for now, the one with the highest g + logits + sigma(completed Q)."""
        roots = games * tree.capacity
        n = tree.visits[roots]
        wanted = np.array([self._schedule(m, tree.capacity - 1)[sim] for m in tree.considered[games]])
        score = self._gumbel_score(tree, games, logits, values, gumbel)
        score[n != wanted[:, None]] = -np.inf
        return score.argmax(axis=1)

    def _schedule(self, considered: int, simulations: int) -> np.ndarray:
        key = (int(considered), simulations)
        if key not in self._halving:
            self._halving[key] = considered_visits(*key)
        return self._halving[key]

    def _gumbel_score(self, tree: "_Trees", games: np.ndarray, logits, values, gumbel) -> np.ndarray:
        roots = games * tree.capacity
        sigma = _completed_q_transform(tree.visits[roots], tree.value_sum[roots], logits[games], values[games],
                                       tree.legal[roots], self.cfg)
        score = gumbel[games] + logits[games] + sigma
        score[~tree.legal[roots]] = -np.inf
        return score

    # ------------------------------------------------------------------ expansion and backup

    def _expand_roots(self, tree: "_Trees", states: list, rng: np.random.Generator | None):
        for b, state in enumerate(states):
            tree.add(b, 0, state.clone())
        obs = encode(states, self.spec)
        logits, values = self.evaluate(obs)
        roots = np.arange(tree.games) * tree.capacity
        logits = np.where(tree.legal[roots], logits, -np.inf)
        prior = _softmax(logits)
        if rng is not None and self.cfg.root == "puct":  # AlphaZero's exploration at the root
            for b in range(tree.games):
                legal = np.flatnonzero(tree.legal[roots[b]])
                noise = rng.dirichlet([self.cfg.dirichlet_alpha] * len(legal))
                prior[b, legal] = (1 - self.cfg.dirichlet_fraction) * prior[b, legal] + self.cfg.dirichlet_fraction * noise
        tree.prior[roots] = prior
        tree.considered[:] = np.minimum(self.cfg.gumbel_considered, tree.legal[roots].sum(axis=1))
        return np.where(tree.legal[roots], logits - logits.max(axis=1, keepdims=True), -np.inf), values, obs

    def _add_leaves(self, tree: "_Trees", games: list, parents: list, actions: list, value0: np.ndarray) -> None:
        """New nodes for the selected edges; their priors and values from one network call."""
        waiting, waiting_states = [], []
        for g, parent, a in zip(games, parents, actions):
            state = tree.states[parent].clone()
            state.apply_action(int(a))
            index = tree.add(g, parent, state, int(a))
            if state.is_terminal():
                value0[g] = tree.terminal_value0[index]
            else:
                waiting.append((g, index))
                waiting_states.append(state)
        if not waiting:
            return
        logits, values = self.evaluate(encode(waiting_states, self.spec))
        index = np.array([i for _, i in waiting])
        tree.prior[index] = _softmax(np.where(tree.legal[index], logits, -np.inf))
        game = np.array([g for g, _ in waiting])
        value0[game] = np.where(tree.player[index] == 0, values, -values)

    def _backup(self, tree: "_Trees", path_nodes, path_actions, length, value0) -> None:
        for depth in range(int(length.max())):
            games = np.flatnonzero(length > depth)
            nodes, actions = path_nodes[depth, games], path_actions[depth, games]
            tree.visits[nodes, actions] += 1
            tree.value_sum[nodes, actions] += np.where(tree.player[nodes] == 0, value0[games], -value0[games])

    def _result(self, tree: "_Trees", logits, values, gumbel, obs: np.ndarray) -> SearchResult:
        roots = np.arange(tree.games) * tree.capacity
        visits = tree.visits[roots].astype(np.float64)
        q = np.where(visits > 0, tree.value_sum[roots] / np.maximum(visits, 1), 0.0)
        prior = _softmax(logits)
        if gumbel is None:
            policy = visits / visits.sum(axis=1, keepdims=True)
            action = visits.argmax(axis=1)
        else:
            games = np.arange(tree.games)
            sigma = _completed_q_transform(tree.visits[roots], tree.value_sum[roots], logits, values, tree.legal[roots],
                                           self.cfg)
            policy = _softmax(np.where(tree.legal[roots], logits + sigma, -np.inf))
            score = self._gumbel_score(tree, games, logits, values, gumbel)
            score[visits != visits.max(axis=1, keepdims=True)] = -np.inf  # among the last ones standing
            action = score.argmax(axis=1)
        return SearchResult(visits, policy, action, prior, values, q, tree.capacity - 1, obs)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _completed_q_transform(visits, value_sum, logits, values, legal, cfg: SearchConfig) -> np.ndarray:
    """sigma(completed Q) (mctx ``qtransform_completed_by_mix_value``): visited actions' mean
    values, the others the mixed value, rescaled to [0, 1] over the legal actions, times
    (c_visit + max N) * c_scale."""
    visited = visits > 0
    q = np.where(visited, value_sum / np.maximum(visits, 1), 0.0)
    prior = _softmax(logits)
    total = visits.sum(axis=1)
    mass = np.where(visited, prior, 0.0).sum(axis=1)
    weighted = np.where(visited, prior * q, 0.0).sum(axis=1) / np.where(mass > 0, mass, 1.0)
    mixed = (values + total * weighted) / (total + 1)
    completed = np.where(visited, q, mixed[:, None])
    low = np.where(legal, completed, np.inf).min(axis=1, keepdims=True)
    high = np.where(legal, completed, -np.inf).max(axis=1, keepdims=True)
    rescaled = (completed - low) / np.maximum(high - low, 1e-8)
    return (cfg.gumbel_c_visit + visits.max(axis=1, keepdims=True)) * cfg.gumbel_c_scale * rescaled


class _Trees:
    """B trees of at most ``capacity`` nodes each, as flat arrays (node ``b * capacity + n``)."""

    def __init__(self, games: int, capacity: int, spec: GameSpec):
        size, actions = games * capacity, spec.num_actions
        self.games, self.capacity = games, capacity
        self.max_depth = min(capacity, spec.max_game_length + 1)
        self.visits = np.zeros((size, actions), dtype=np.int32)
        self.value_sum = np.zeros((size, actions))
        self.prior = np.zeros((size, actions))
        self.legal = np.zeros((size, actions), dtype=bool)
        self.child = np.full((size, actions), -1, dtype=np.int64)
        self.player = np.zeros(size, dtype=np.int8)
        self.terminal = np.zeros(size, dtype=bool)
        self.terminal_value0 = np.zeros(size)
        self.count = np.zeros(games, dtype=np.int64)
        self.considered = np.ones(games, dtype=np.int64)
        self.states: dict[int, object] = {}
        self.num_actions = actions

    def add(self, game: int, parent: int, state, action: int | None = None) -> int:
        """A node for ``state`` in ``game``'s tree (the root when ``action`` is None)."""
        index = game * self.capacity + int(self.count[game])
        self.count[game] += 1
        self.states[index] = state
        if action is not None:
            self.child[parent, action] = index
        if state.is_terminal():
            self.terminal[index] = True
            self.terminal_value0[index] = state.returns()[0]
        else:
            self.player[index] = state.current_player()
            self.legal[index] = legal_mask(state, self.num_actions)
        return index
