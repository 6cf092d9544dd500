"""The configs ship inside the wheel: a wheel installed into a fresh venv trains."""

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # learning, subprocesses or whole pipelines: left out of make test-fast

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_and_trains(tmp_path):
    # build from a copy: setuptools' in-tree build/ folder could carry stale files
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("rlexp", "conf", "hydra_plugins"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = dist.glob("rlexp-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    # The fresh venv gets the heavy dependencies (torch, gymnasium...) from the test
    # environment through a .pth file, but not its editable rlexp: installing them again
    # would only measure the network.
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, text=True)

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(py), "-c", "import rlexp, rlexp.conf; print(rlexp.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout
    assert str(env_dir) in where, where  # the wheel's copy, not the checkout
    sweepers = subprocess.run([str(py), "-c", "from hydra.core.plugins import Plugins; from hydra.plugins.sweeper import "
                               "Sweeper; print([c.__module__ for c in Plugins.instance().discover(Sweeper)])"],
                              cwd=work, env=env, capture_output=True, text=True, check=True).stdout
    assert "hydra_plugins.rlexp_sweepers.resumable_optuna" in sweepers, sweepers  # Hydra finds the wheel's sweeper

    out = subprocess.run(
        [str(env_dir / "bin" / "rlexp"), "train", "total_steps=600", "eval_episodes=2", "eval_interval_steps=0",
         "algo.learning_starts_steps=200", "algo.train_interval_steps=100", "algo.updates_per_train=2",
         "logger=none"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    (run_dir,) = (work / "runs" / "dqn" / "CartPole-v1").iterdir()
    assert (run_dir / "metrics.jsonl").exists() and (run_dir / "checkpoints" / "latest.pt").exists()
    listing = subprocess.run([str(env_dir / "bin" / "rlexp"), "list"], cwd=work, env=env, capture_output=True,
                             text=True, check=True).stdout
    assert "cartpole" in listing and "dqn" in listing
