"""AlphaZero self-play end to end: the run's files and metrics, matches and play from the
command line, and tic-tac-toe learned to perfect play (a learning test)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rlexp.loggers.jsonl import read_metrics
from rlexp.train import run
from tests.conftest import cli, compose_train, run_cli

SMALL = ["algo=alphazero", "env=tictactoe", "network.hidden_sizes=[32]", "algo.total_games=96",
         "algo.concurrent_games=16", "algo.simulations=8", "algo.log_interval_games=32", "algo.eval_interval_games=48",
         "algo.checkpoint_interval_games=48", "algo.eval_games=6", "algo.eval_opponents=[random,perfect]",
         "algo.train_interval_games=16", "algo.updates_per_train=4", "algo.batch_size=32",
         "algo.learning_starts_positions=64", "logger=none", "logger.progress=none", "device.torch_threads=1"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("selfplay") / "run"
    threads = torch.get_num_threads()
    summary = run(compose_train(SMALL), run_dir)
    assert torch.get_num_threads() == threads
    return run_dir, summary


def test_a_selfplay_run_counts_games_and_logs_what_the_issue_names(small_run):
    run_dir, summary = small_run
    assert summary["games"] == 96 and summary["game"] == "tic_tac_toe()" and 0 <= summary["objective"] <= 1
    rows = read_metrics(run_dir / "metrics.jsonl")
    train = [r for r in rows if "perf/games_per_s" in r]
    assert len(train) >= 3 and all(r["step"] >= 32 for r in train)
    for key in ("selfplay/games", "selfplay/game_length", "perf/simulations_per_s", "loss/policy", "loss/value"):
        assert key in train[-1], key
    evals = [r for r in rows if "eval/win_rate_vs_random" in r]
    assert [r["step"] >= 48 for r in evals] and len(evals) == 2
    for key in ("eval/draw_rate_vs_random", "eval/loss_rate_vs_perfect", "eval/score_vs_perfect"):
        assert key in evals[-1], key
    records = sorted((run_dir / "games").glob("eval_game*.jsonl"))
    assert len(records) == 2
    game = json.loads(records[-1].read_text().splitlines()[0])
    assert game["opponent"] == "random" and game["moves"] and game["final"].count("\n") == 2
    assert {p.name for p in (run_dir / "figures").iterdir()} == {"positions.png", "score_curve.png"}


def test_rlexp_eval_plays_a_match_with_intervals(small_run):
    run_dir, _ = small_run
    code, out, err = cli(["eval", str(run_dir), "--opponent", "mcts", "--games", "4", "--mcts-simulations", "20"])
    assert code == 0, err
    assert "4 games vs mcts (20 simulations), half as each colour" in out and "(95% Wilson)" in out
    record = json.loads((run_dir / "evals.jsonl").read_text().splitlines()[-1])
    assert record["games"] == 4 and record["opponent"] == "mcts" and len(record["win_ci95"]) == 2
    assert (run_dir / record["games_file"]).is_file()


def test_rlexp_play_in_the_terminal_and_replay(small_run, monkeypatch):
    run_dir, _ = small_run
    from typer.testing import CliRunner

    from rlexp.cli import app

    # the person plays the first free cell each time, the agent answers
    answers = "\n".join(str(a) for a in range(9)) * 3 + "\n"
    result = CliRunner().invoke(app, ["play", str(run_dir)], input=answers)
    assert result.exit_code == 0, result.output
    assert "you are player 0" in result.output and "agent plays" in result.output
    assert any(end in result.output for end in ("you won.", "a draw.", "the agent won."))
    record = sorted((run_dir / "games").glob("eval_game*.jsonl"))[-1]
    code, out, err = cli(["play", str(run_dir), "--replay", str(record), "--game", "2"])
    assert code == 0, err
    assert "outcome for the agent" in out


@pytest.mark.slow
def test_the_tictactoe_preset_learns_perfect_play(tmp_path):
    """The default preset (algo=alphazero env=tictactoe): no loss in 100 games against perfect play
    as either colour, and the raw network's greedy move minimax-optimal in at least 95% of the
    reachable non-terminal positions (every one of them checked against exact minimax)."""
    from rlexp.games.agent import load_agent
    from rlexp.games.openspiel import GameSpec, encode
    from rlexp.games.players import Solver, make_opponent, play_match

    # the command a user types, in its own process: torch.compile and amp, used in-process by other
    # tests, leave process-wide state behind that halves this run's speed
    done = run_cli(["train", "algo=alphazero", "env=tictactoe", "seed=1", "logger=none", "logger.progress=none",
                    f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    agent = load_agent(tmp_path / "run", device="cpu")
    match = play_match(agent.game, agent.moves, make_opponent("perfect", agent.game, 0, 0), 100,
                       np.random.default_rng(0))
    assert match.outcomes.count(-1) == 0 and match.agent_first.count(True) == 50
    solver, positions, seen, stack = Solver(agent.game), [], set(), [agent.game.new_initial_state()]
    while stack:
        state = stack.pop()
        if state.is_terminal() or str(state) in seen:
            continue
        seen.add(str(state))
        positions.append(state)
        stack += [state.child(a) for a in state.legal_actions()]
    assert len(positions) == 4520
    logits, _ = agent.search.evaluate(encode(positions, GameSpec.of(agent.game)))
    optimal = [max(s.legal_actions(), key=lambda a: row[a]) in solver.optimal_actions(s)
               for s, row in zip(positions, logits)]
    assert np.mean(optimal) >= 0.95, np.mean(optimal)


def test_a_finished_game_run_trains_longer_with_a_budget_in_games(small_run, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(small_run[0], run_dir)
    code, _, err = cli(["resume", str(run_dir)])
    assert code == 2 and f"{run_dir} already finished its 96 games; to train it longer: rlexp resume" in err
    code, _, err = cli(["resume", str(run_dir), "--total-steps", "500"])  # gone: --budget is the one way
    assert code == 2 and "No such option: --total-steps" in err
    code, out, err = cli(["resume", str(run_dir), "--budget", "112"])
    assert code == 0, out[-1500:] + err
    assert json.loads((run_dir / "summary.json").read_text())["games"] == 112
