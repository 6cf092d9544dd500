"""The rlexp command, through a subprocess, as a user runs it."""

import json

import pytest

from rlexp.loggers.jsonl import read_metrics
from tests.conftest import TINY, cli, compose_train, run_cli, wandb_run_bytes


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_help_lists_grammar_and_groups(tmp_path):
    for args in (["--help"], ["train", "--help"]):
        out = run_cli(args, tmp_path)
        assert out.returncode == 0, out.stderr
        for text in ("group=option", "-m a=1,2", "--cfg job", "algo", "dqn", "env", "cartpole", "device", "logger"):
            assert text in out.stdout, (args, text)


def test_list(tmp_path):
    out = run_cli(["list"], tmp_path)
    assert out.returncode == 0
    for line in ("algo:", "  dqn", "env:", "  cartpole", "device:", "  cuda", "logger:", "  wandb", "network:"):
        assert line in out.stdout


@pytest.mark.slow
def test_cfg_job_prints_the_config_and_runs_nothing(tmp_path):
    out = run_cli(["train", "--cfg", "job", "algo=dqn", "algo.lr=5e-4"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "lr: 0.0005" in out.stdout and "id: CartPole-v1" in out.stdout
    assert _files(tmp_path) == []


@pytest.mark.slow
def test_train_single_run(tmp_path):
    out = run_cli(["train", "algo=dqn", "env=cartpole", "seed=3", "algo.lr=5e-4", *TINY], tmp_path)
    assert out.returncode == 0, out.stderr
    run_dirs = list((tmp_path / "runs" / "dqn" / "CartPole-v1").iterdir())
    assert len(run_dirs) == 1 and run_dirs[0].name.endswith("_seed3")
    run_dir = run_dirs[0]
    assert str(run_dir.name) in out.stdout  # says where the run went
    command = (run_dir / "command.txt").read_text()
    assert command.startswith("rlexp train ") and "seed=3" in command and "algo.lr=5e-4" in command
    assert "lr: 0.0005" in (run_dir / "config.yaml").read_text()
    assert read_metrics(run_dir / "metrics.jsonl")[-1]["step"] == 1500
    assert (run_dir / "checkpoints" / "latest.pt").exists()


@pytest.mark.slow
def test_multirun_two_jobs_one_sweep_dir(tmp_path):
    out = run_cli(["train", "-m", "seed=1,2", *TINY, "logger=wandb", "logger.progress=none"], tmp_path)
    assert out.returncode == 0, out.stderr
    sweeps = list((tmp_path / "runs" / "multirun").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0_seed1", "1_seed2"]
    for job, seed in zip(jobs, (1, 2)):
        assert f"seed: {seed}" in (job / "config.yaml").read_text()
        assert read_metrics(job / "metrics.jsonl")
        # W&B offline writes one binary log (protobuf records, strings stored raw): the
        # sweep's group, the resolved config and the metrics are in it
        needles = tuple(n.encode() for n in (f"multirun-{sweeps[0].name}", "buffer_capacity_transitions",
                                              "eval/episode_return"))
        data = wandb_run_bytes(job, needles)
        for needle in needles:
            assert needle in data, needle


BAD_INPUTS = [
    (["algo.lr=abc"], "invalid value for algo.lr: 'abc' is not a valid float"),
    (["algo.lrr=1"], "unknown key 'algo.lrr'; valid keys: name, optimizer, lr,"),
    (["algo=ppo", "algo.n_step=3"], "unknown key 'algo.n_step': a setting of algo=dqn, qr_dqn, rainbow; valid keys: "
                                    "name, lr,"),
    (["algo=sacc"], "unknown option algo=sacc; valid choices: a2c, alphazero, ddpg, dpo, dqn, grpo, ppo, pretrain, "
                    "q_learning, qr_dqn, rainbow, reinforce, reward_model, rlhf_ppo, rloo, sac, sarsa, sft, td3, "
                    "value_iteration"),
    (["algo=sac", "env=cartpole"], "algo=sac needs a continuous (Box) action space, this env's is Discrete(2)"),
    (["algo=td3", "env=cartpole"], "algo=td3 needs a continuous (Box) action space"),
    (["algo=dqn", "env=pendulum"], "algo=dqn needs a discrete action space"),
    (["algo=sac", "env=pendulum", "algo.tau=0"], "algo.tau must be in (0, 1]"),
    (["algo=td3", "env=pendulum", "algo.tau=1.5"], "algo.tau must be in (0, 1]"),
    (["algo=sac", "env=pendulum", "algo.target_entropy=high"], "algo.target_entropy must be auto (minus the action "
                                                               "dimension) or a number, got 'high'"),
    (["algo=td3", "env=pendulum", "algo.policy_delay=0"], "algo.policy_delay must be >= 1"),
    (["env.id=CartPol-v1"], "env.id='CartPol-v1' is not a registered gymnasium environment; did you mean CartPole-v1"),
    (["total_steps=0"], "total_steps must be > 0, got 0"),
    (["total_steps=-100"], "total_steps must be > 0, got -100"),
    (["eval_interval_steps=-1"], "eval_interval_steps must be >= 0"),
    (["algo.batch_size=0"], "algo.batch_size must be > 0"),
    (["seed=1,2"], "seed=1,2 is a sweep: add -m"),
    (["seed=choice(1,2)"], "seed=choice(1,2) is a sweep: add -m"),
    (["nosuchgroup=x"], "unknown"),
    (["env=atari"], "env.game is required: add env.game=<value>"),
    (["env=atari", "env.game=pacmn"], "env.game='pacmn' is not an ALE game; did you mean pacman"),
    (["env=cartpole", "network=nature_cnn"], "network=nature_cnn needs uint8 image observations"),
    (["env=pong", "network=mlp"], "network=mlp cannot take image observations"),
    (["algo=q_learning", "env=cartpole"], "algo=q_learning needs discrete states (observations), the env has Box("),
    (["algo=dqn", "env=maze"], "network=auto needs Box (vector or image) observations, the env has Discrete(37)"),
    (["env=maze", "env.layout='#S  #'"], "env.layout has no goal cell (G); it needs exactly one"),
    (["env=maze", "env.layout='###\\n#S#G#\\n###'"], "env.layout rows have different lengths (3, 5, 3)"),
    (["env=maze", "env.layout='#####\\n#S#G#\\n#####'"], "env.layout's goal cannot be reached from the start (1, 1)"),
    (["env=maze", "env.layout='#S?G#'"], "env.layout has an unknown character '?' at row 0, column 2"),
    (["algo=value_iteration", "env=cartpole"], "algo=value_iteration needs discrete states"),
    (["--cfg", "job", "-m", "seed=1,2"], "Only one of --run, --multirun, --cfg"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[a[0] for a, _ in BAD_INPUTS])
def test_bad_input_one_line_nonzero_nothing_written(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)  # in process (no interpreter start-up per case); Hydra writes under the cwd
    code, _, err = cli(["train", *args, "logger=none"])
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]
    assert _files(tmp_path) == []


@pytest.mark.slow
def test_cuda_without_cuda_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = run_cli(["train", "device=cuda", "logger=none"], tmp_path)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [
        "error: device=cuda is not available (this torch is a CPU-only build); valid choices here: auto, cpu"
    ] or "device=cuda is not available" in out.stderr
    assert _files(tmp_path) == []


@pytest.mark.slow
def test_bad_input_in_a_multirun_leaves_no_job_dir(tmp_path):
    out = run_cli(["train", "-m", "env.id=CartPol-v1", "logger=none"], tmp_path)
    assert out.returncode != 0
    assert "error: env.id='CartPol-v1' is not a registered" in out.stderr
    assert not list(tmp_path.rglob("config.yaml"))


@pytest.mark.slow
def test_train_pong_through_the_cli(tmp_path):
    out = run_cli(["train", "algo=dqn", "env=pong", "total_steps=600", "eval_episodes=1", "eval_interval_steps=0",
                   "checkpoint_interval_steps=300", "algo.learning_starts_steps=200", "algo.train_interval_steps=4",
                   "algo.buffer_capacity_transitions=2000", "env.max_episode_frames=2000", "logger=none",
                   "device.torch_threads=1"], tmp_path)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (tmp_path / "runs" / "dqn" / "ALE-Pong-v5").iterdir()
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert rows[-1]["step"] == 600 and "eval/episode_return" in rows[-1]
    assert -21 <= rows[-1]["eval/episode_return"] <= 21  # the game score, not clipped rewards
    assert {"latest.pt", "best.pt", "step_0000000300.pt"} <= {p.name for p in (run_dir / "checkpoints").iterdir()}
    assert "protocol: nature" in (run_dir / "config.yaml").read_text()
    assert json.loads((run_dir / "summary.json").read_text())["protocol"] == "nature"
    assert "protocol nature" in out.stdout


@pytest.mark.slow
def test_tabular_maze_run_draws_its_pictures_and_renders_a_video(tmp_path):
    out = run_cli(["train", "algo=q_learning", "env=maze", "total_steps=4000", "eval_interval_steps=2000",
                   "logger.figure_interval_episodes=20", "logger.progress=none"], tmp_path)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (tmp_path / "runs" / "q_learning" / "maze").iterdir()
    figures = {p.name for p in (run_dir / "figures").iterdir()}
    assert {"policy.png", "values.png", "model.png", "learning_curve.png"} <= figures
    assert {"policy_episode20.png", "values_episode20.png", "model_episode20.png"} <= figures  # every 20 episodes
    assert "figures/" in out.stdout and "policy.png" in out.stdout
    data = wandb_run_bytes(run_dir, (b"figures/policy", b"figures/learning_curve"))
    assert b"figures/policy" in data and b"figures/learning_curve" in data  # W&B images
    out = run_cli(["eval", str(run_dir), "--episodes", "2", "--video"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "return:     mean" in out.stdout and "lengths:" in out.stdout
    (video,) = (run_dir / "videos").glob("*.mp4")
    assert video.stat().st_size > 1000


@pytest.mark.slow
def test_a_maze_drawn_on_the_command_line(tmp_path):
    out = run_cli(["train", "algo=value_iteration", "env=maze", "env.layout='#####\\n#S  #\\n## G#\\n#####'",
                   "algo.gamma=1.0", "total_steps=50", "eval_episodes=1", "logger=none", "logger.progress=none"],
                  tmp_path)
    assert out.returncode == 0, out.stderr
    assert "final eval return -3.0" in out.stdout


def test_an_openspiel_game_string_with_parameters_needs_no_quoting():
    """`env.game=breakthrough(rows=6,columns=6)` as the issue writes it: rlexp quotes it for Hydra."""
    from rlexp.hydra_front import hydra_argv

    assert hydra_argv(["env.game=breakthrough(rows=6,columns=6)", "seed=2"]) == [
        "env.game='breakthrough(rows=6,columns=6)'", "seed=2"]
    assert hydra_argv(["env.game='hex(board_size=5)'", "env.game=tic_tac_toe"]) == [
        "env.game='hex(board_size=5)'", "env.game=tic_tac_toe"]  # already quoted, or nothing to quote
    cfg = compose_train(["algo=alphazero", "env=openspiel", *hydra_argv(["env.game=breakthrough(rows=6,columns=6)"])])
    assert cfg.env.game == "breakthrough(rows=6,columns=6)"
