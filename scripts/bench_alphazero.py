"""rlexp's batched AlphaZero search against OpenSpiel's own Python MCTSBot, one invocation.

Both search the same game with the same network (a freshly initialised policy-value net of
the preset's architecture, in eval mode), the same PUCT rule and the same number of
simulations per move; OpenSpiel's bot uses the network as its evaluator (``prior`` and
``evaluate``), one state at a time, as OpenSpiel's Python AlphaZero does. rlexp searches
``--games`` positions at once and evaluates each simulation's new leaves in one call.

Printed: simulations per second of each, their ratio, and self-play games per second (whole
games, every move searched: rlexp's concurrent games against the bot's one game at a time).

    python scripts/bench_alphazero.py                              # connect_four, 100 simulations
    python scripts/bench_alphazero.py --game tic_tac_toe --simulations 50
    python scripts/bench_alphazero.py --device cuda                # the network on the GPU

Target (issue 14): rlexp >= 5x OpenSpiel's Python MCTSBot's simulations per second on CPU.
"""

from __future__ import annotations

import argparse
import time

import machine  # scripts/machine.py: the CPU model (and GPU) for every figure
import numpy as np
import torch


def make_learner(game_name: str, network: list[str], device: str):

    from rlexp.algos.alphazero import AlphaZero
    from rlexp.config import compose
    from rlexp.games.openspiel import GameSpec, load_game

    env = {"tic_tac_toe": "tictactoe", "connect_four": "connect_four"}.get(game_name)
    overrides = ["algo=alphazero", f"env={env}" if env else "env=openspiel", *([] if env else [f"env.game={game_name}"]),
                 *network]
    cfg = compose(overrides)
    game = load_game(cfg.env.game)
    spec = GameSpec.of(game)
    torch.manual_seed(0)
    return cfg, game, spec, AlphaZero(cfg.algo, spec, cfg.network, torch.device(device), 0)


def positions(game, count: int, rng: np.random.Generator) -> list:
    """Positions a few random moves into the game (not terminal)."""
    out = []
    while len(out) < count:
        state = game.new_initial_state()
        for _ in range(int(rng.integers(0, 8))):
            if state.is_terminal():
                break
            state.apply_action(int(rng.choice(state.legal_actions())))
        if not state.is_terminal():
            out.append(state)
    return out


def bench_rlexp(game, spec, learner, cfg, states: list, simulations: int) -> dict:
    from rlexp.games.agent import search_config
    from rlexp.games.search import BatchedSearch

    search = BatchedSearch(spec, learner.evaluate, search_config(cfg.algo))
    search.run(states[:2], None, 4)  # warm-up
    start = time.perf_counter()
    search.run(states, np.random.default_rng(0), simulations)
    search_s = time.perf_counter() - start
    # whole self-play games: every move of every game searched, all games at once
    games = [game.new_initial_state() for _ in range(len(states))]
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    while any(not g.is_terminal() for g in games):
        live = [g for g in games if not g.is_terminal()]
        result = search.run(live, rng, simulations)
        for g, visits in zip(live, result.visits):
            g.apply_action(int(rng.choice(len(visits), p=visits / visits.sum())))
    games_s = time.perf_counter() - start
    return {"sims_per_s": len(states) * simulations / search_s, "games_per_s": len(games) / games_s}


class NetworkEvaluator:
    """OpenSpiel's ``mcts.Evaluator`` interface over the same network, one state per call."""

    def __init__(self, learner, spec):
        self.learner, self.spec = learner, spec

    def _run(self, state):
        from rlexp.games.openspiel import encode

        logits, values = self.learner.evaluate(encode([state], self.spec))
        return logits[0], float(values[0])

    def evaluate(self, state):
        value = self._run(state)[1]
        player = state.current_player()
        return np.array([value, -value] if player == 0 else [-value, value])

    def prior(self, state):
        logits, _ = self._run(state)
        legal = state.legal_actions()
        z = np.exp(logits[legal] - logits[legal].max())
        return list(zip(legal, z / z.sum()))


def bench_openspiel(game, spec, learner, cfg, states: list, simulations: int, games: int) -> dict:
    from open_spiel.python.algorithms import mcts

    bot = mcts.MCTSBot(game, cfg.algo.c_puct, simulations, NetworkEvaluator(learner, spec), solve=False,
                       random_state=np.random.RandomState(0), child_selection_fn=mcts.SearchNode.puct_value)
    start = time.perf_counter()
    for state in states:
        bot.step(state)
    search_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(games):
        state = game.new_initial_state()
        while not state.is_terminal():
            state.apply_action(bot.step(state))
    games_s = time.perf_counter() - start
    return {"sims_per_s": len(states) * simulations / search_s, "games_per_s": games / games_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="connect_four", help="an OpenSpiel game string")
    parser.add_argument("--simulations", type=int, default=100, help="search simulations per move (both)")
    parser.add_argument("--games", type=int, default=64, help="positions rlexp searches at once")
    parser.add_argument("--openspiel-positions", type=int, default=16, help="positions OpenSpiel's bot searches")
    parser.add_argument("--openspiel-games", type=int, default=2, help="whole self-play games of OpenSpiel's bot")
    parser.add_argument("--network", nargs="*", default=[], help="network overrides, e.g. network.resnet_blocks=3")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    cfg, game, spec, learner = make_learner(args.game, args.network, args.device)
    states = positions(game, args.games, np.random.default_rng(0))
    gpu = f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""
    print(f"machine: {machine.describe()}, {torch.get_num_threads()} torch threads, torch "
          f"{torch.__version__}, device {args.device}{gpu}")
    net = sum(p.numel() for p in learner.net.parameters())
    print(f"{spec.name}, network {type(learner.net).__name__} ({net:,} parameters), {args.simulations} simulations "
          f"per move, PUCT c={cfg.algo.c_puct}")
    ours = bench_rlexp(game, spec, learner, cfg, states, args.simulations)
    print(f"  rlexp batched search ({args.games} games at once): {ours['sims_per_s']:9.0f} simulations/s, "
          f"{ours['games_per_s']:6.2f} self-play games/s", flush=True)
    theirs = bench_openspiel(game, spec, learner, cfg, states[:args.openspiel_positions], args.simulations,
                             args.openspiel_games)
    print(f"  OpenSpiel Python MCTSBot (one state per call): {theirs['sims_per_s']:9.0f} simulations/s, "
          f"{theirs['games_per_s']:6.2f} self-play games/s")
    print(f"  ratio rlexp/openspiel: {ours['sims_per_s'] / theirs['sims_per_s']:.1f}x simulations/s, "
          f"{ours['games_per_s'] / theirs['games_per_s']:.1f}x games/s (target >= 5x simulations/s on CPU)")


if __name__ == "__main__":
    main()
