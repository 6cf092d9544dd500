"""Shared fixtures: composed configs with tiny budgets, and a subprocess CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlexp.config import TrainConfig, compose

RLEXP = [sys.executable, "-m", "rlexp"]

# Tiny budgets: a run of a few thousand steps, W&B off unless a test turns it on.
TINY = [
    "total_steps=1500",
    "eval_interval_steps=0",
    "eval_episodes=2",
    "checkpoint_interval_steps=0",
    "algo.learning_starts_steps=500",
    "algo.train_interval_steps=64",
    "algo.updates_per_train=4",
    "logger=none",
    "logger.progress=none",
]


def compose_train(overrides: list[str] | None = None) -> TrainConfig:
    """The composed, validated config for ``overrides`` (as `rlexp train` would build it)."""
    return compose(overrides or [])


@pytest.fixture
def tiny_cfg() -> TrainConfig:
    return compose_train(TINY)


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``rlexp ARGS`` in a subprocess, in ``cwd``, without a terminal."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [*RLEXP, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def cli(args: list[str]) -> tuple[int, str, str]:
    """``rlexp ARGS`` in this process (no interpreter start-up, ~3 s less than :func:`run_cli`):
    (exit code, stdout, stderr). For commands that fail early or run briefly."""
    import torch
    from typer.testing import CliRunner

    from rlexp.cli import app

    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(app, args)
    finally:
        torch.set_num_threads(threads)  # a run applies device.torch_threads process-wide
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Keep W&B and friends out of the real home directory."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))


def wandb_run_bytes(run_dir: Path, needles: tuple[bytes, ...], timeout_s: float = 20.0) -> bytes:
    """The offline W&B log of a run, once it holds every needle.

    W&B's service process writes the binary log asynchronously and may still be flushing
    just after ``finish()`` returns; wait for it (bounded) instead of racing it.
    """
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        files = list(Path(run_dir, "wandb").glob("offline-run-*/run-*.wandb"))
        data = files[0].read_bytes() if len(files) == 1 else b""
        if all(n in data for n in needles) or time.monotonic() > deadline:
            return data
        time.sleep(0.2)
