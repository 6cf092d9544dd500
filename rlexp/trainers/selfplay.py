"""The self-play family: AlphaZero on OpenSpiel board games, counted in games.

``concurrent_games`` games are played at once; each ``advance`` is one move in every game,
chosen by one batched search over all of them (``rlexp.games.search``). A finished game's
positions go to the learner's replay window with its outcome, a new game takes its place,
and every ``train_interval_games`` finished games the learner trains. Evaluations play
matches against the configured opponents (``rlexp.games.players``) with the search's own
choice (no noise) and report win, draw and loss rates with 95% intervals.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rlexp.budget import GAMES
from rlexp.build import algorithm_class
from rlexp.config import GameEnvConfig, TrainConfig
from rlexp.errors import ConfigError
from rlexp.games.agent import search_config, untrained_agent
from rlexp.games.openspiel import GameSpec, encode, load_game, mirror, replay_history
from rlexp.games.players import MatchResult, make_opponent, play_match
from rlexp.games.search import BatchedSearch
from rlexp.trainers.base import Evaluation, Trainer


@dataclass
class Slot:
    """One game in progress: its moves so far and its positions awaiting the outcome."""

    actions: list[int] = field(default_factory=list)
    obs: list[np.ndarray] = field(default_factory=list)
    policy: list[np.ndarray] = field(default_factory=list)
    player: list[int] = field(default_factory=list)


def check_game_run(cfg: TrainConfig) -> None:
    """Refuse an env that is no board game.

    Raises:
        ConfigError: one line naming the setting and what to use instead.
    """
    if not isinstance(cfg.env, GameEnvConfig):
        raise ConfigError(f"algo={cfg.algo.name} plays OpenSpiel board games; env={cfg.env.id} is not one: use "
                          "env=tictactoe, env=connect_four or env=openspiel env.game=<name(params)>")


class SelfPlayTrainer(Trainer):
    """AlphaZero self-play on an OpenSpiel game; see the module docstring."""

    budget = GAMES
    score_name = "eval_score"
    rate_metric = "perf/games_per_s"

    def __init__(self, cfg: TrainConfig, device: torch.device):
        check_game_run(cfg)
        a = cfg.algo
        self.cfg, self.device = cfg, device
        self.schedule = self.budget.schedule(cfg)
        self.game = load_game(cfg.env.game)
        self.spec = GameSpec.of(self.game)
        if a.augment == "mirror":  # a game whose actions do not map onto its board is refused now
            mirror(np.zeros((1, *self.spec.obs_shape), np.float32), np.zeros((1, self.spec.num_actions), np.float32),
                   self.spec)
        self.learner = algorithm_class(cfg)(a, self.spec, cfg.network, device, cfg.seed, cfg.device)
        self.search = BatchedSearch(self.spec, self.learner.evaluate, search_config(a))
        self.rng = np.random.default_rng([cfg.seed, 1])  # self-play's draws: noise, temperature
        self.slots = [Slot() for _ in range(min(a.concurrent_games, a.total_games))]
        self.states: list = []
        self.progress = 0
        self.pictures_due = None
        self.games_since_train = 0
        self.lengths: list[int] = []  # of the games finished since the last log event
        self.simulations, self.search_s = 0, 0.0  # since the last log event
        self.curves: dict[str, list[list[float]]] = {}  # opponent -> [(games, score)] per evaluation
        self.last_match: MatchResult | None = None

    # ------------------------------------------------------------------ the work

    eval_options = ("opponent", "games", "mcts_simulations", "simulations")

    @classmethod
    def evaluate_saved(cls, run_dir: str, checkpoint: str, seed: int | None, device: str, trust: bool,
                       opponent: str = "random", games: int = 100, mcts_simulations: int | None = None,
                       simulations: int | None = None) -> tuple[dict[str, Any], list[str]]:
        """``games`` games against ``opponent``, half as each colour (rlexp.games.agent.evaluate_games)."""
        from pathlib import Path

        from rlexp.games.agent import describe_match, evaluate_games

        record = evaluate_games(run_dir, opponent, games, mcts_simulations, checkpoint, simulations, seed, device, trust)
        return record, describe_match(Path(run_dir), record)

    def start(self, resumed: bool) -> list[str]:
        # a budget extended on resume reopens the slots that closed at the old one (with the same
        # budget there is no room: slots close only when no game is left to start)
        room = self.schedule.total - self.progress - len(self.slots)
        self.slots += [Slot() for _ in range(max(0, min(self.cfg.algo.concurrent_games - len(self.slots), room)))]
        self.states = [replay_history(self.game, slot.actions) for slot in self.slots]
        return []

    def advance(self) -> dict[str, float]:
        """One move in every game in progress, from one batched search."""
        started = time.perf_counter()
        result = self.search.run(self.states, self.rng)
        self.search_s += time.perf_counter() - started
        self.simulations += result.simulations * len(self.states)
        obs = result.obs
        finished = []
        for i, (slot, state) in enumerate(zip(self.slots, self.states)):
            action = self._choose(result, i, len(slot.actions))
            slot.obs.append(obs[i]), slot.policy.append(result.policy[i].astype(np.float32))
            slot.player.append(state.current_player())
            slot.actions.append(action)
            state.apply_action(action)
            if state.is_terminal():
                self._finish_game(i)
                finished.append(i)
        room = max(self.cfg.algo.total_games - self.progress - (len(self.slots) - len(finished)), 0)  # games to start
        for i in reversed(finished[room:]):  # no game past the budget: these slots close
            del self.slots[i], self.states[i]
        for i in finished[:room]:  # still before any closed slot, so the indices hold
            self.slots[i], self.states[i] = Slot(), self.game.new_initial_state()
        c = self.cfg.algo
        if self.games_since_train >= c.train_interval_games and self.learner.window.size >= c.learning_starts_positions:
            self.games_since_train = 0
            return self.learner.train(c.updates_per_train)
        return {}

    def _choose(self, result, i: int, move: int) -> int:
        """Gumbel: the search's choice. PUCT: in proportion to the visits for the first
        ``temperature_moves`` moves (temperature 1), then the most visited."""
        if self.cfg.algo.root_search == "gumbel" or move >= self.cfg.algo.temperature_moves:
            return int(result.action[i])
        visits = result.visits[i]
        return int(self.rng.choice(len(visits), p=visits / visits.sum()))

    def _finish_game(self, i: int) -> None:
        slot, state = self.slots[i], self.states[i]
        returns = state.returns()
        outcome = np.array([returns[p] for p in slot.player], dtype=np.float32)
        obs, policy = np.stack(slot.obs), np.stack(slot.policy)
        self.learner.add(obs, policy, outcome)
        if self.cfg.algo.augment == "mirror":
            self.learner.add(*mirror(obs, policy, self.spec), outcome)
        self.lengths.append(len(slot.actions))
        self.progress += 1
        self.games_since_train += 1

    def log_metrics(self) -> dict[str, float]:
        metrics = {"selfplay/games": float(self.progress), "selfplay/positions": float(self.learner.window.size)}
        if self.lengths:
            metrics["selfplay/game_length"] = float(np.mean(self.lengths))
        if self.search_s > 0:
            metrics["perf/simulations_per_s"] = self.simulations / self.search_s
        self.lengths, self.simulations, self.search_s = [], 0, 0.0
        return metrics

    # ------------------------------------------------------------------ evaluation and pictures

    def agent(self, simulations: int | None = None):
        """The agent as a match sees it: the search's own choice for a batch of states, no noise."""
        sims = simulations or self.cfg.algo.eval_simulations or self.cfg.algo.simulations
        return lambda states: self.search.run(states, None, sims).action

    def evaluate(self, index: int) -> Evaluation:
        a = self.cfg.algo
        metrics, texts, records, score, score_std = {}, [], [], float("nan"), float("nan")
        for k, name in enumerate(a.eval_opponents):
            rng = np.random.default_rng([self.cfg.seed, 3, index, k])  # not the self-play stream
            untrained = untrained_agent(self.cfg, self.spec, self.device) if name == "untrained" else None
            opponent = make_opponent(name, self.game, a.mcts_opponent_simulations, self.cfg.seed + k, untrained)
            match = play_match(self.game, self.agent(), opponent, a.eval_games, rng)
            s = match.summary()
            for key in ("win", "draw", "loss"):
                metrics[f"eval/{key}_rate_vs_{name}"] = s[f"{key}_rate"]
            metrics[f"eval/score_vs_{name}"] = s["score"]
            self.curves.setdefault(name, []).append([self.progress, s["score"]])
            texts.append(f"vs {name} {s['win_rate']:.0%} won, {s['draw_rate']:.0%} drawn, {s['loss_rate']:.0%} lost")
            records += [self._record(match, j) for j in range(len(match.outcomes))]
            if k == 0:
                score, score_std, self.last_match = s["score"], float(np.std(np.array(match.outcomes) / 2 + 0.5)), match
        text = f"eval score {score:.3f} ({'; '.join(texts)}; {a.eval_games} games each)"
        name = f"games/eval_{self.unit.one}{self.progress}.jsonl"
        return Evaluation(score, score_std, metrics, text, records={name: "".join(json.dumps(r) + "\n" for r in records)})

    def _record(self, match: MatchResult, j: int) -> dict[str, Any]:
        state = self.game.new_initial_state()
        moves = []
        for action in match.moves[j]:
            moves.append(state.action_to_string(state.current_player(), action))
            state.apply_action(action)
        return {"game": self.spec.name, "opponent": match.opponent, "agent_first": match.agent_first[j],
                "outcome": match.outcomes[j], "actions": match.moves[j], "moves": moves, "final": str(state)}

    def figures(self, final: bool) -> dict[str, Any]:
        from rlexp.games.pictures import draw_positions, draw_score_curves

        positions = self._positions()
        logits, values = self.learner.evaluate(encode(positions, self.spec))
        title = f"alphazero on {self.spec.name}, seed {self.cfg.seed}, after {self.progress} games"
        figures = {"positions": draw_positions(positions, logits, values, self.spec, title)}
        if final and self.curves:
            figures["score_curve"] = draw_score_curves(self.curves, title)
        return figures

    def _positions(self) -> list:
        """The initial position and positions of the last evaluation game (or of self-play)."""
        n = self.cfg.algo.figure_positions
        moves = self.last_match.moves[0] if self.last_match else (self.slots[0].actions if self.slots else [])
        picks = np.unique(np.linspace(0, max(len(moves) - 1, 0), num=max(n, 1)).astype(int))[:n]
        states = [replay_history(self.game, moves[:k]) for k in picks]
        return [s for s in states if not s.is_terminal()] or [self.game.new_initial_state()]

    def summary(self) -> dict[str, Any]:
        return {"game": self.spec.name, "positions": int(self.learner.window.size)}

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        slots = [{"actions": s.actions, "player": s.player,
                  "obs": torch.from_numpy(np.stack(s.obs)) if s.obs else None,
                  "policy": torch.from_numpy(np.stack(s.policy)) if s.policy else None} for s in self.slots]
        return {"learner": self.learner.state_dict(), "slots": slots, "rng": self.rng.bit_generator.state,
                "progress": self.progress, "games_since_train": self.games_since_train, "lengths": self.lengths,
                "curves": self.curves}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        if len(state["slots"]) > len(self.slots):
            raise ValueError(f"the checkpoint holds {len(state['slots'])} games in progress, this run plays at most "
                             f"{len(self.slots)} at once")
        self.slots = [Slot(list(s["actions"]), list(s["obs"].numpy()) if s["obs"] is not None else [],
                           list(s["policy"].numpy()) if s["policy"] is not None else [], list(s["player"]))
                      for s in state["slots"]]
        self.rng.bit_generator.state = state["rng"]
        self.progress, self.games_since_train = state["progress"], state["games_since_train"]
        self.lengths, self.curves = list(state["lengths"]), dict(state["curves"])

    def buffer_state(self) -> dict[str, Any]:
        return self.learner.buffer_state()

    def load_buffer_state(self, state: dict[str, Any]) -> None:
        self.learner.load_buffer_state(state)

    def non_finite(self) -> str:
        return self.learner.non_finite()
