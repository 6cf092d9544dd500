"""`rlexp eval RUN_DIR`: load a finished run, evaluate a checkpoint, record mp4 videos."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from rlexp.build import EVAL_SEED_OFFSET
from rlexp.config import AtariEnvConfig, ConfigError, DQNConfig, EnvConfig
from rlexp.runs import CHECKPOINT_NAMES, load_run_config, resolve_checkpoint
from rlexp.train import run
from rlexp.video import record_episode
from tests.conftest import TINY, compose_train, run_cli

HAS_PYGAME = importlib.util.find_spec("pygame") is not None


def _rows(run_dir: Path) -> list[dict]:
    path = run_dir / "evals.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _tree(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*") if p.is_file())


def _read_mp4(path: Path) -> tuple[list[np.ndarray], dict]:
    import imageio.v2 as imageio

    with imageio.get_reader(path, format="FFMPEG") as reader:
        meta = reader.get_meta_data()
        frames = [frame for frame in reader]
    return frames, meta


def _assert_playable_mp4(path: Path) -> list[np.ndarray]:
    data = path.read_bytes()
    assert data[4:8] == b"ftyp", "not an MP4 (ISO base media) file"
    frames, meta = _read_mp4(path)
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p"), meta
    assert all(frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8 for frame in frames)
    return frames


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny CartPole DQN run (trained in-process) and the config it ran with."""
    cfg = compose_train(TINY)
    run_dir = tmp_path_factory.mktemp("eval") / "run"
    run(cfg, run_dir)
    return cfg, run_dir


@pytest.fixture
def run_copy(trained, tmp_path):
    """A private copy of the trained run (tests that must see nothing written use it)."""
    copy = tmp_path / "run"
    shutil.copytree(trained[1], copy, ignore=shutil.ignore_patterns("evals.jsonl", "videos"))
    return copy


# --------------------------------------------------------------------------- rlexp.runs


def test_checkpoint_names_match_rlexp_checkpoint():
    from rlexp.checkpoint import BEST, LATEST

    assert CHECKPOINT_NAMES == {"latest": LATEST, "best": BEST}


def test_load_run_config_round_trips(trained):
    cfg, run_dir = trained
    loaded = load_run_config(run_dir)
    assert loaded == cfg
    assert isinstance(loaded.algo, DQNConfig) and isinstance(loaded.env, EnvConfig)


def test_load_run_config_picks_the_atari_schema(tmp_path):
    cfg = compose_train(["env=pong", "env.max_episode_frames=2000", "logger=none"])
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))  # as rlexp.train writes it
    loaded = load_run_config(tmp_path)
    assert loaded == cfg and isinstance(loaded.env, AtariEnvConfig) and loaded.env.protocol == "nature"


@pytest.mark.parametrize(
    "edit, message",
    [
        (("algo", "name", "sacc"), r"algo.name='sacc' is not a known algorithm; valid choices: dqn"),
        (("env", "type", "mujoco"), r"env.type='mujoco' is not a known env type; valid choices: gym, atari"),
        (("algo", "lr", -1.0), r"config.yaml: algo.lr must be > 0, got -1.0"),
        (("algo", "lr", "abc"), r"does not fit this rlexp's config schema: invalid value for algo.lr"),
        (("algo", "lrr", 1), r"does not fit this rlexp's config schema: unknown key 'algo.lrr'; valid keys: name,"),
    ],
)
def test_load_run_config_rejects_bad_configs(trained, tmp_path, edit, message):
    data = OmegaConf.load(trained[1] / "config.yaml")
    group, key, value = edit
    data[group][key] = value
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(data))
    with pytest.raises(ConfigError, match=message):
        load_run_config(tmp_path)


def test_load_run_config_needs_a_run_directory(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_run_config(tmp_path / "nosuch")
    with pytest.raises(ConfigError, match=r"is not a run directory \(no config.yaml\)"):
        load_run_config(tmp_path)
    (tmp_path / "0_seed1").mkdir()
    (tmp_path / "0_seed1" / "config.yaml").write_text("seed: 1\n")
    with pytest.raises(ConfigError, match="is a sweep directory, not a run; pass one of its runs: 0_seed1"):
        load_run_config(tmp_path)
    (tmp_path / "config.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="is not a run config"):
        load_run_config(tmp_path)


def test_resolve_checkpoint(trained):
    _, run_dir = trained
    ckpts = run_dir / "checkpoints"
    assert resolve_checkpoint(run_dir, "latest") == ckpts / "latest.pt"
    assert resolve_checkpoint(run_dir, "best") == ckpts / "best.pt"
    assert resolve_checkpoint(run_dir, "latest.pt") == ckpts / "latest.pt"  # a file in checkpoints/
    assert resolve_checkpoint(run_dir, str(ckpts / "best.pt")) == ckpts / "best.pt"  # a path
    with pytest.raises(ConfigError, match=r"checkpoint 'step_9' not found in .*; available: latest, best"):
        resolve_checkpoint(run_dir, "step_9")


# --------------------------------------------------------------------------- videos


class _Blink(gym.Env):
    """20 steps of reward 1; odd-sized frames (libx264 needs even ones)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # below the 15 fps floor

    def __init__(self):
        self.render_mode = "rgb_array"
        self.observation_space = gym.spaces.Box(0, 1, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        assert self.action_space.contains(action)
        self.t += 1
        return np.zeros(2, np.float32), 1.0, self.t >= 20, False, {}

    def render(self):
        frame = np.zeros((45, 61, 3), np.uint8)
        frame[:, : 3 * self.t] = 255  # a growing white bar
        return frame


def test_record_episode_writes_a_playable_mp4(tmp_path):
    seen = []

    def policy(obs):
        seen.append(obs.shape)
        return np.zeros(len(obs), dtype=np.int64)

    path = tmp_path / "videos" / "blink.mp4"
    assert record_episode(policy, _Blink(), path, seed=0) == (20.0, 21)
    assert set(seen) == {(1, 2)}  # the policy gets obs[None]
    frames = _assert_playable_mp4(path)
    assert len(frames) == 21 and frames[0].shape == (46, 62, 3)  # padded to even sizes
    assert frames[-1][:, :40].mean() > 200 and frames[0][:, 10:].mean() < 50  # the content made it
    assert _read_mp4(path)[1]["fps"] == 15  # 10 fps is raised to the floor
    assert [p.name for p in path.parent.iterdir()] == ["blink.mp4"]  # no temporary file left

    assert record_episode(policy, _Blink(), path, seed=0, max_steps=5) == (5.0, 6)  # replaces the file
    assert len(_read_mp4(path)[0]) == 6


def test_record_episode_leaves_nothing_when_the_policy_fails(tmp_path):
    def policy(obs):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        record_episode(policy, _Blink(), tmp_path / "v.mp4", seed=0)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the command


def test_help_lists_eval(tmp_path):
    out = run_cli(["--help"], tmp_path)
    assert out.returncode == 0 and "eval" in out.stdout
    out = run_cli(["eval", "--help"], tmp_path)
    assert out.returncode == 0
    for option in ("--checkpoint", "--episodes", "--video", "--video-episodes", "--seed", "--device"):
        assert option in out.stdout


@pytest.mark.slow
def test_eval_prints_and_records(trained, tmp_path):
    _, run_dir = trained
    before = len(_rows(run_dir))
    out = run_cli(["eval", str(run_dir), "--episodes", "3"], tmp_path)
    assert out.returncode == 0, out.stderr
    rows = _rows(run_dir)
    assert len(rows) == before + 1
    row = rows[-1]
    assert row["checkpoint"] == "checkpoints/step_0000001500.pt" and row["step"] == 1500  # what latest named
    assert row["episodes"] == 3 and len(row["returns"]) == 3 and len(row["lengths"]) == 3
    assert row["seed"] == 1 + EVAL_SEED_OFFSET  # the run's first in-training eval seed
    assert row["mean"] == pytest.approx(np.mean(row["returns"])) and row["std"] == pytest.approx(np.std(row["returns"]))
    assert "protocol" not in row and "videos" not in row and row["time"]
    assert "mean" in out.stdout and "std" in out.stdout and "returns:" in out.stdout
    assert f"{run_dir / 'checkpoints' / 'step_0000001500.pt'} (step 1500)" in out.stdout
    assert out.stderr == ""

    out = run_cli(["eval", str(run_dir), "--checkpoint", "best", "--episodes", "3", "--seed", "7"], tmp_path)
    assert out.returncode == 0, out.stderr
    row = _rows(run_dir)[-1]
    assert row["checkpoint"] == "checkpoints/best.pt" and row["seed"] == 7 and len(row["returns"]) == 3


@pytest.mark.slow
@pytest.mark.skipif(not HAS_PYGAME, reason="CartPole renders with pygame (gymnasium[classic-control]), not installed")
def test_eval_video_cartpole(trained, tmp_path):
    _, run_dir = trained
    out = run_cli(["eval", str(run_dir), "--video", "--episodes", "2"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "error" not in out.stderr  # pygame renders off-screen, without probing for a display
    row = _rows(run_dir)[-1]
    (video,) = row["videos"]
    path = run_dir / video["path"]
    assert path.name == "eval_step1500_ep0.mp4" and str(path) in out.stdout
    frames = _assert_playable_mp4(path)
    assert len(frames) == video["frames"] > 1 and frames[0].shape == (400, 600, 3)


@pytest.mark.skipif(HAS_PYGAME, reason="pygame is installed: CartPole renders")
def test_eval_video_without_a_renderer_is_one_line(run_copy, tmp_path):
    before = _tree(run_copy)
    out = run_cli(["eval", str(run_copy), "--video", "--episodes", "2"], tmp_path)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        'error: CartPole-v1 cannot render videos here: pygame is not installed, run `pip install "gymnasium[classic-control]"`'
    ]
    assert _tree(run_copy) == before


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing", "no_config", "no_checkpoint", "truncated"])
def test_eval_bad_input_is_one_line_and_writes_nothing(case, run_copy, tmp_path):
    args, expect = {
        "missing": ([str(tmp_path / "nosuch")], f"error: run directory {tmp_path / 'nosuch'} does not exist"),
        "no_config": ([str(run_copy / "checkpoints")],
                      f"error: {run_copy / 'checkpoints'} is not a run directory (no config.yaml)"),
        "no_checkpoint": ([str(run_copy), "--checkpoint", "nosuch"],
                          f"error: checkpoint 'nosuch' not found in {run_copy}; available: latest, best"),
        "truncated": ([str(run_copy), "--video", "--checkpoint", "best"],
                      f"error: checkpoint {run_copy / 'checkpoints' / 'best.pt'} cannot be loaded "
                      "(corrupt or truncated?)"),
    }[case]
    if case == "truncated":
        best = run_copy / "checkpoints" / "best.pt"
        best.write_bytes(best.read_bytes()[:600] + b"\x00garbage\xff" * 8)
    before = _tree(run_copy)
    out = run_cli(["eval", *args, "--episodes", "2"], tmp_path)
    assert out.returncode == 2, out.stdout
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(expect), out.stderr
    assert out.stdout == ""
    assert _tree(run_copy) == before  # no evals.jsonl, no videos/
    assert not (tmp_path / "nosuch").exists()


@pytest.mark.slow
def test_eval_of_a_damaged_latest_uses_the_previous_checkpoint(run_copy, tmp_path):
    from rlexp.checkpoint import CheckpointStore, load_checkpoint

    ckpts = run_copy / "checkpoints"
    newest = ckpts / "step_0000001500.pt"
    CheckpointStore(ckpts).save(1000, {**load_checkpoint(newest), "step": 1000})  # an older checkpoint
    newest.write_bytes(newest.read_bytes()[:600])
    out = run_cli(["eval", str(run_copy), "--episodes", "2"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"warning: {newest} is truncated" in out.stderr and "using the checkpoint before it" in out.stderr
    assert _rows(run_copy)[-1]["checkpoint"] == "checkpoints/step_0000001000.pt"


@pytest.mark.slow
def test_pong_video_from_an_untrained_run(tmp_path):
    """Atari end to end: a freshly initialised DQN on Pong, its eval under the nature protocol, a video."""
    cfg = compose_train([
        "env=pong", "env.max_episode_frames=800",  # 200 agent steps per episode at most
        "env.num_threads=1", "device.torch_threads=1",  # 2 shared cores: no thread pools fighting over them
        "total_steps=4", "eval_episodes=1", "eval_interval_steps=0", "checkpoint_interval_steps=0",
        "algo.learning_starts_steps=1000", "algo.buffer_capacity_transitions=1000", "logger=none", "logger.progress=none",
    ])
    run_dir = tmp_path / "pong"
    threads = torch.get_num_threads()
    try:
        run(cfg, run_dir)
    finally:
        torch.set_num_threads(threads)  # run() applied device.torch_threads to this process
    out = run_cli(["eval", str(run_dir), "--episodes", "1", "--video", "--device", "cpu"], tmp_path)
    assert out.returncode == 0, out.stderr
    row = _rows(run_dir)[-1]
    assert row["env"] == "ALE/Pong-v5" and row["protocol"]["name"] == "nature" and row["device"] == "cpu"
    assert "protocol:   nature" in out.stdout
    assert -21 <= row["returns"][0] <= 21 and row["lengths"][0] <= 200
    (video,) = row["videos"]
    path = run_dir / video["path"]
    assert path == run_dir / "videos" / "eval_step4_ep0.mp4" and str(path) in out.stdout
    frames = _assert_playable_mp4(path)
    assert len(frames) == video["frames"] > 10 and frames[0].shape == (210, 160, 3)  # the full-colour screen
    assert np.ptp(np.stack(frames[:: len(frames) // 5]), axis=0).max() > 0  # the picture moves
