"""The bad-input corpus: each input gets one clear line, a non-zero exit, and leaves every
existing run directory as it was (and writes no new one)."""

import shutil

import pytest
import torch

from rlexp.train import run
from tests.conftest import cli, compose_train

TABULAR = ["total_steps=300", "eval_interval_steps=0", "eval_episodes=2", "checkpoint_interval_steps=100",
           "logger=none", "logger.progress=none", "logger.figures=false"]


@pytest.fixture(scope="module")
def existing(tmp_path_factory):
    """A working directory with two runs under runs/: ``old`` finished, and ``other``, unfinished,
    whose config.yaml is old's while its checkpoints come from a run on a larger maze."""
    root = tmp_path_factory.mktemp("work")
    threads = torch.get_num_threads()
    try:
        for name, env in (("old", "maze"), ("other", "maze_large")):
            run(compose_train(["algo=q_learning", f"env={env}", *TABULAR]), root / "runs" / name)
    finally:
        torch.set_num_threads(threads)
    other = root / "runs" / "other"
    config = (root / "runs" / "old" / "config.yaml").read_text()
    (other / "config.yaml").write_text(config)
    (other / "summary.json").unlink()
    # someone else's runs whose configs name code: a _target_, and an env module to import
    for name, text in (("evil_target", config.replace("network:\n", "network:\n  _target_: os.system\n", 1)),
                       ("evil_module", config.replace("  id: maze\n", "  id: evil_module:Evil-v0\n", 1))):
        shutil.copytree(root / "runs" / "old", root / "runs" / name, symlinks=True)
        assert text != config
        (root / "runs" / name / "config.yaml").write_text(text)
    return root


def _tree(root):
    """Every file's bytes and every directory, under ``root``."""
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(root.rglob("*"))}


CORPUS = {
    "malformed override": (["train", "algo.lr=[1,2"], "error: malformed override"),
    "unknown group option": (["train", "algo=sacc"], "error: unknown option algo=sacc; valid choices: a2c, alphazero, ddpg"),
    "unknown group": (["train", "optimizer=adam"], "error: unknown key 'optimizer'; valid keys: algo, env"),
    "unknown key": (["train", "algo.lrr=1"], "error: unknown key 'algo.lrr'; valid keys: name, optimizer, lr"),
    "wrong type": (["train", "algo.batch_size=big"], "error: invalid value for algo.batch_size: 'big' is not a valid int"),
    "negative gamma": (["train", "algo.gamma=-0.1"], "error: algo.gamma must be in [0, 1], got -0.1"),
    "epsilon above 1": (["train", "algo.epsilon_start=1.5"], "error: algo.epsilon_start must be in [0, 1], got 1.5"),
    "zero batch": (["train", "algo.batch_size=0"], "error: algo.batch_size must be > 0, got 0"),
    "nan learning rate": (["train", "algo.lr=nan"], "error: algo.lr must be a finite number > 0, got nan"),
    "image env with an MLP": (["train", "env=pong", "network=mlp"],
                              "error: network=mlp cannot take image observations (4, 84, 84)"),
    "continuous actions with DQN": (["train", "algo=dqn", "env=pendulum"],
                                    "error: algo=dqn needs a discrete action space"),
    "resume a missing directory": (["resume", "runs/nosuch"], "error: run directory runs/nosuch does not exist"),
    "resume a folder that is no run": (["resume", "runs/old/checkpoints"],
                                       "error: runs/old/checkpoints is not a run directory"),
    "resume= a missing directory": (["train", "resume=runs/nosuch"], "error: run directory runs/nosuch does not exist"),
    "a checkpoint of another config": (["resume", "runs/other"], "error: checkpoint runs/other/checkpoints/"),
    "eval with a checkpoint of another config": (["eval", "runs/old", "--checkpoint", "../other/checkpoints/best.pt"],
                                                 "error: checkpoint runs/old/../other/checkpoints/best.pt"),
    "eval of a config naming os.system": (["eval", "runs/evil_target"], "error: runs/evil_target/config.yaml: "
                                          "network._target_='os.system' is not allowed"),
    "resume of a config importing a module": (["resume", "runs/evil_module"], "error: runs/evil_module/config.yaml: "
                                              "env.id='evil_module:Evil-v0' would import module 'evil_module'"),
    # found as a new user would (issue 13): malformed arguments, impossible combinations, unwritable outputs
    "an override without a key": (["train", "=5"], "error: malformed override '=5': a key is missing"),
    "an unknown flag": (["train", "--bogus"], "error: unknown option --bogus"),
    "-m after an override": (["train", "launcher=nosuch", "-m", "seed=1,2"],
                             "error: unknown option launcher=nosuch; valid choices: basic"),
    "a run dir that cannot be made": (["train", "hydra.run.dir=/proc/forbidden"], "error: cannot write /proc/forbidden"),
    "a run dir under a file": (["train", "hydra.run.dir=runs/old/config.yaml/x"], "error: cannot write runs/old/config.yaml/x"),
    "a sweep dir that cannot be made": (["train", "-m", "hydra.sweep.dir=/proc/forbidden", "seed=1,2"],
                                        "error: cannot write /proc/forbidden"),
    "a batch larger than the replay": (["train", "algo.buffer_capacity_transitions=10", "algo.batch_size=64"],
                                       "error: algo.batch_size=64 is larger than the replay buffer"),
    "a seed numpy cannot take": (["train", "seed=99999999999"], "error: seed must be <= 4294967295"),
    "seeds_per_job past the seed range": (["train", "seed=4294967295", "seeds_per_job=2"],
                                          "error: seed must be <= 4294967295"),
    "amp for a Q-table": (["train", "algo=q_learning", "env=maze", "device.amp=true"],
                          "error: device.amp=true (bfloat16 autocast of network passes) does not apply to algo=q_learning"),
    "a replay setting without a replay": (["train", "algo=ppo", "device.replay=device"],
                                          "error: device.replay=device (replay buffer placement) does not apply to algo=ppo"),
    "periodic pictures with pictures off": (["train", "logger.figure_interval_episodes=5", "logger.figures=false"],
                                            "error: logger.figure_interval_episodes=5 draws pictures, but logger.figures"),
    "report --out onto a file": (["report", "runs/old", "--out", "runs/old/config.yaml"],
                                 "error: --out runs/old/config.yaml is a file"),
    "report --out where nothing can be written": (["report", "runs/old", "--out", "/proc/report"],
                                                  "error: --out /proc/report: /proc is not writable"),
    # board games (issue 14)
    "alphazero on a gym env": (["train", "algo=alphazero", "env=cartpole"],
                               "error: algo=alphazero plays OpenSpiel board games; env=CartPole-v1 is not one"),
    "a gym algorithm on a board game": (["train", "algo=dqn", "env=tictactoe"],
                                        "error: algo=dqn steps gymnasium envs; env=tictactoe is an OpenSpiel board game"),
    "a game that is not two-player zero-sum": (["train", "algo=alphazero", "env=openspiel", "env.game=kuhn_poker"],
                                               "error: env.game='kuhn_poker' cannot be learned by self-play tree search"),
    "a malformed game string": (["train", "algo=alphazero", "env=openspiel", "env.game='breakthrough(rows=6'"],
                                "error: env.game='breakthrough(rows=6' is not a game string"),
    "zero simulations": (["train", "algo=alphazero", "env=tictactoe", "algo.simulations=0"],
                         "error: algo.simulations must be > 0, got 0"),
    "agent steps for a game": (["train", "algo=alphazero", "env=tictactoe", "total_steps=1000"],
                               "error: total_steps counts agent steps of gym envs; algo=alphazero counts games"),
    "agent steps for a game, at their default": (["train", "algo=alphazero", "env=tictactoe", "total_steps=50000"],
                                                 "error: total_steps counts agent steps of gym envs; algo=alphazero "
                                                 "counts games: set algo.total_games"),
    "an evaluation size in agent-step runs' terms": (["train", "algo=sft", "eval_episodes=10"],
                                                     "error: eval_episodes is for runs counted in agent steps of gym "
                                                     "envs; algo=sft counts examples: set algo.eval_prompts"),
    "a game budget on a gym run": (["train", "algo.total_games=10"],
                                   "error: algo.total_games counts self-play games; algo=dqn counts agent steps: set "
                                   "total_steps"),
    "a board OpenSpiel accepts but cannot exist": (["train", "algo=alphazero", "env=openspiel",
                                                    "env.game='breakthrough(rows=-2,columns=5)'"],
                                                   "error: env.game='breakthrough(rows=-2,columns=5)' has no board"),
    "an unknown eval opponent": (["train", "algo=alphazero", "env=tictactoe", "algo.eval_opponents=[minimax]"],
                                 "error: algo.eval_opponents='minimax' is not valid; choose one of: random, mcts, perfect, untrained"),
    "rlexp play on a gym run": (["play", "runs/old"], "error: runs/old is a run of algo=q_learning on maze, not a "
                                "board-game run"),
    "--opponent on a gym run": (["eval", "runs/old", "--opponent", "mcts"],
                                "error: --opponent is not for runs of algo=q_learning; their options: --episodes, "
                                "--video, --video-episodes"),
    "--video-episodes without --video": (["eval", "runs/old", "--video-episodes", "2"],
                                         "error: --video-episodes sets how many episodes --video records; add --video"),
}


def test_trust_lets_a_run_directory_name_its_own_code(existing):
    from rlexp.runs import load_run_config

    assert load_run_config(existing / "runs" / "evil_module", trust=True).env.id == "evil_module:Evil-v0"


@pytest.mark.parametrize("case", list(CORPUS))
def test_bad_input_is_one_line_and_loses_nothing(case, existing, monkeypatch):
    args, expect = CORPUS[case]
    monkeypatch.chdir(existing)
    before = _tree(existing)
    code, out, err = cli([*args, "logger=none"] if args[0] == "train" else args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expect), err
    assert _tree(existing) == before  # no run directory touched, none created
