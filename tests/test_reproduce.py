"""scripts/reproduce_<preset>.sh: a multi-seed sweep of the preset, then its report."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # learning, subprocesses or whole pipelines: left out of make test-fast

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))


def test_every_preset_has_a_reproduce_script():
    for preset in PRESETS:
        script = REPO / "scripts" / f"reproduce_{preset}.sh"
        assert script.exists() and os.access(script, os.X_OK), preset


def test_reproduce_runs_the_seeds_then_the_report(tmp_path):
    env = {**os.environ, "RLEXP": f"{sys.executable} -m rlexp", "REPRODUCE_DIR": str(tmp_path / "repro")}
    tiny = ["total_steps=256", "eval_interval_steps=0", "eval_episodes=2", "checkpoint_interval_steps=0",
            "logger=none", "logger.progress=none", "logger.figures=false"]
    out = subprocess.run([str(REPO / "scripts" / "reproduce_ppo_cartpole.sh"), "2", *tiny], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    root = tmp_path / "repro" / "ppo_cartpole"
    assert sorted(p.name for p in root.iterdir() if p.name[0].isdigit()) == ["0_seed1", "1_seed2"]
    report = (root / "report" / "report.md").read_text()
    assert "| 2 |" in report and (root / "report" / "curves.png").exists()
    assert "rl-baselines3-zoo" in report  # the published-vs-ours table (budget differs: stated)


@pytest.mark.parametrize("args", [["no_such_preset"], ["ppo_cartpole", "0"]])
def test_bad_input_fails_with_a_message(tmp_path, args):
    env = {**os.environ, "RLEXP": f"{sys.executable} -m rlexp", "REPRODUCE_DIR": str(tmp_path / "repro")}
    out = subprocess.run([str(REPO / "scripts" / "reproduce.sh"), *args], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "error" in out.stderr
