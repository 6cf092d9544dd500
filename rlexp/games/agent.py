"""A trained board-game agent loaded from its run directory: ``rlexp eval`` (matches against
an opponent, recorded in ``evals.jsonl``) and ``rlexp play`` (a person against the agent in
the terminal, or a recorded game replayed)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

import numpy as np

from rlexp.config import GameEnvConfig, TrainConfig
from rlexp.errors import ConfigError, first_line


@dataclass
class GameAgent:
    """A run's game, network and search, restored from one checkpoint."""

    run_dir: Path
    cfg: TrainConfig
    checkpoint: Path
    step: int | None  # games played when the checkpoint was written
    game: Any  # the pyspiel game
    search: Any  # rlexp.games.search.BatchedSearch
    simulations: int

    def moves(self, states: list) -> np.ndarray:
        """The agent's moves for a batch of states: one batched search, no noise."""
        return self.search.run(states, None, self.simulations).action


def is_game_run(cfg: TrainConfig) -> bool:
    return isinstance(cfg.env, GameEnvConfig)


def load_agent(run_dir: Path | str, checkpoint: str = "latest", device: str = "auto", simulations: int | None = None,
               trust: bool = False) -> GameAgent:
    """The agent of a board-game run at ``checkpoint`` (latest, best, a file or a path).

    Raises:
        ConfigError: not a board-game run, or any problem with the directory, config or checkpoint.
    """
    from rlexp.build import algorithm_class, resolve_device
    from rlexp.config import DeviceConfig
    from rlexp.games.openspiel import GameSpec, load_game
    from rlexp.games.search import BatchedSearch
    from rlexp.runs import check_run_dir, latest_good_checkpoint, load_run_checkpoint, load_run_config

    run_dir = check_run_dir(run_dir)
    cfg = load_run_config(run_dir, trust=trust)
    if not is_game_run(cfg):
        raise ConfigError(f"{run_dir} is a run of algo={cfg.algo.name} on {cfg.env.id}, not a board-game run "
                          "(algo=alphazero); evaluate it with rlexp eval RUN_DIR --episodes N")
    if simulations is not None and simulations < 1:
        raise ConfigError(f"--simulations must be >= 1, got {simulations}")
    path = latest_good_checkpoint(run_dir, checkpoint)
    ckpt = load_run_checkpoint(path)
    game = load_game(cfg.env.game)
    spec = GameSpec.of(game)
    learner = algorithm_class(cfg)(cfg.algo, spec, cfg.network, resolve_device(DeviceConfig(type=device)), cfg.seed,
                                   cfg.device)
    try:
        learner.load_state_dict({"net": ckpt["trainer"]["learner"]["net"]})
    except (KeyError, RuntimeError, ValueError, TypeError) as err:
        raise ConfigError(f"checkpoint {path} does not fit {run_dir / 'config.yaml'}: {first_line(err)}") from None
    sims = simulations or cfg.algo.eval_simulations or cfg.algo.simulations
    step = ckpt.get("step")
    return GameAgent(run_dir, cfg, path, int(step) if step is not None else None, game,
                     BatchedSearch(spec, learner.evaluate, search_config(cfg.algo)), sims)


def evaluate_games(run_dir: Path | str, opponent: str, games: int, mcts_simulations: int | None = None,
                   checkpoint: str = "latest", simulations: int | None = None, seed: int | None = None,
                   device: str = "auto", trust: bool = False) -> dict[str, Any]:
    """Play ``games`` games against ``opponent`` (half as first player), append the record to
    ``RUN_DIR/evals.jsonl`` and the games to ``RUN_DIR/games/``; returns the record.

    Raises:
        ConfigError: bad input; nothing has been written.
    """
    from rlexp.checkpoint import atomic_write
    from rlexp.errors import check_writable_dir
    from rlexp.games.players import make_opponent, play_match
    from rlexp.runs import EVALS_FILE, run_relative

    if games < 1:
        raise ConfigError(f"--games must be >= 1, got {games}")
    agent = load_agent(run_dir, checkpoint, device, simulations, trust)
    check_writable_dir(agent.run_dir, "run directory")
    sims = agent.cfg.algo.mcts_opponent_simulations if mcts_simulations is None else mcts_simulations
    seed = agent.cfg.seed + 7_000_000 if seed is None else seed
    untrained = None
    if opponent == "untrained":
        from rlexp.build import resolve_device
        from rlexp.config import DeviceConfig
        from rlexp.games.openspiel import GameSpec

        untrained = untrained_agent(agent.cfg, GameSpec.of(agent.game), resolve_device(DeviceConfig(type=device)),
                                    agent.simulations)
    bot = make_opponent(opponent, agent.game, sims, seed, untrained)
    started = time.perf_counter()
    match = play_match(agent.game, agent.moves, bot, games, np.random.default_rng(seed))
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "checkpoint": run_relative(agent.checkpoint, agent.run_dir),
              "step": agent.step, "game": agent.cfg.env.game, "seed": seed, "agent_simulations": agent.simulations,
              **({"mcts_simulations": sims} if opponent == "mcts" else {}), **match.summary(),
              "eval_s": time.perf_counter() - started}
    games_file = agent.run_dir / "games" / f"eval_{opponent}_{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    lines = [json.dumps({"opponent": opponent, "agent_first": f, "outcome": o, "actions": m})
             for f, o, m in zip(match.agent_first, match.outcomes, match.moves)]
    atomic_write(games_file, lambda f: f.write(("\n".join(lines) + "\n").encode()))
    record["games_file"] = run_relative(games_file, agent.run_dir)
    with open(agent.run_dir / EVALS_FILE, "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


def play(run_dir: Path | str, human_first: bool = True, simulations: int | None = None, checkpoint: str = "latest",
         device: str = "auto", trust: bool = False, read: Callable[[str], str] = input, out: TextIO | None = None) -> int:
    """A person against the agent in the terminal; returns the person's result (+1, 0, -1)."""
    import sys

    out = out or sys.stdout
    agent = load_agent(run_dir, checkpoint, device, simulations, trust)
    state = agent.game.new_initial_state()
    human = 0 if human_first else 1
    print(f"{agent.cfg.env.game}: you are player {human} ({'first' if human_first else 'second'}); the agent searches "
          f"{agent.simulations} simulations per move. Moves: their number or their name; q quits.", file=out)
    while not state.is_terminal():
        print(f"\n{state}", file=out)
        if state.current_player() == human:
            action = _ask_move(state, read, out)
            if action is None:
                print("stopped.", file=out)
                return 0
        else:
            action = int(agent.moves([state])[0])
            print(f"agent plays {state.action_to_string(state.current_player(), action)}", file=out)
        state.apply_action(action)
    result = int(np.sign(state.returns()[human]))
    verdict = {1: "you won", 0: "a draw", -1: "the agent won"}[result]
    print(f"\n{state}\n{verdict}.", file=out)
    return result


def _ask_move(state, read: Callable[[str], str], out: TextIO) -> int | None:
    player = state.current_player()
    names = {state.action_to_string(player, a): a for a in state.legal_actions()}
    while True:
        print("legal: " + ", ".join(f"{a}={name}" for name, a in names.items()), file=out)
        try:
            text = read("your move> ").strip()
        except EOFError:
            return None
        if text in ("q", "quit", "exit"):
            return None
        if text in names:
            return names[text]
        if text.lstrip("-").isdigit() and int(text) in names.values():
            return int(text)
        print(f"{text!r} is not a legal move", file=out)


def replay(path: Path | str, line: int = 1, out: TextIO | None = None) -> None:
    """Print the positions of the ``line``-th game recorded in ``path`` (games/*.jsonl)."""
    import sys

    from rlexp.games.openspiel import load_game

    out = out or sys.stdout
    path = Path(path)
    try:
        records = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path} is not a game record file: {first_line(err)}") from None
    if not 1 <= line <= len(records):
        raise ConfigError(f"{path} holds {len(records)} games; --game must be in 1..{len(records)}")
    record = records[line - 1]
    game = load_game(record.get("game") or _game_of(path))
    state = game.new_initial_state()
    print(f"game {line} of {path.name}: vs {record['opponent']}, agent {'first' if record['agent_first'] else 'second'}",
          file=out)
    for action in record["actions"]:
        print(f"\n{state}\n{state.action_to_string(state.current_player(), action)}", file=out)
        state.apply_action(action)
    print(f"\n{state}\noutcome for the agent: {record['outcome']:+d}", file=out)


def _game_of(path: Path) -> str:
    """The game of a record file, from its run's config (records of rlexp eval name no game)."""
    from rlexp.runs import load_run_config

    return load_run_config(path.parent.parent).env.game


def describe_match(run_path: Path, record: dict) -> list[str]:
    """``rlexp eval``'s lines for a match record (:func:`evaluate_games`)."""
    step = record["step"] if record["step"] is not None else "?"
    against = record["opponent"] + (f" ({record['mcts_simulations']} simulations)" if "mcts_simulations" in record else "")
    lines = [f"checkpoint: {run_path / record['checkpoint']} (game {step})",
             f"match:      {record['game']}, {record['games']} games vs {against}, half as each colour, "
             f"agent {record['agent_simulations']} simulations per move, seed {record['seed']}"]
    for key in ("win", "draw", "loss"):
        low, high = record[f"{key}_ci95"]
        lines.append(f"{key + ':':<11} {record[f'{key}_rate']:.3f} [{low:.3f}, {high:.3f}] (95% Wilson)   as first "
                     f"{record[f'{key}_rate_first']:.3f}, as second {record[f'{key}_rate_second']:.3f}")
    return lines + [f"score:      {record['score']:.3f} (win + draw / 2)",
                    f"recorded in {run_path / 'evals.jsonl'}; the games in {run_path / record['games_file']}"]


def untrained_agent(cfg: TrainConfig, spec: Any, device: Any, simulations: int | None = None):
    """The agent's search (no noise) driven by a freshly initialised network of the run's
    architecture: the baseline that shows what training added. The global torch generator is
    left as it was."""
    import torch

    from rlexp.build import algorithm_class
    from rlexp.games.search import BatchedSearch

    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed + 1)
        fresh = algorithm_class(cfg)(cfg.algo, spec, cfg.network, device, cfg.seed + 1, cfg.device)
    search = BatchedSearch(spec, fresh.evaluate, search_config(cfg.algo))
    sims = simulations or cfg.algo.eval_simulations or cfg.algo.simulations
    return lambda states: search.run(states, None, sims).action


def search_config(a) -> Any:
    """The search settings (``rlexp.games.search.SearchConfig``) of an ``AlphaZeroConfig``."""
    from rlexp.games.search import SearchConfig

    return SearchConfig(simulations=a.simulations, c_puct=a.c_puct, root=a.root_search,
                        dirichlet_alpha=a.dirichlet_alpha, dirichlet_fraction=a.dirichlet_fraction,
                        gumbel_considered=a.gumbel_considered_actions, gumbel_c_visit=a.gumbel_c_visit,
                        gumbel_c_scale=a.gumbel_c_scale)
